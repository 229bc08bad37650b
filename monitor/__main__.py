"""``python -m monitor`` is the same program as ``permit-monitor``."""

from cli import main

main(prog_name="permit-monitor")
