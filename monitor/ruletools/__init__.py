"""Tools for rule authors, above the engine: ``rules check`` (:mod:`.check`), ``rules
test`` (golden tests, :mod:`.golden`), ``rules explain`` (:mod:`.explain`), ``rules
backtest`` (:mod:`.backtest`) and ``rules calibrate`` (:mod:`.calibrate`).

They use the rule core (:mod:`monitor.rules`) and the engine as the ``run`` command does,
so what they report is what ``run`` would do; nothing below the entry points imports them.
"""
