"""permit-monitor: electronic supervision (电子监察) of administrative permits.

The library never imports click and never reads the wall clock below the CLI:
``now`` is always an argument.
"""

__version__ = "0.1.0"
