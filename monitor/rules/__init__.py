"""Rules: YAML files naming a kind from a fixed registry, with typed parameters.

The rule core, below the engine: the rule model (:mod:`.model`), the loader that turns a
file into one (:mod:`.loader`, typed parameters: :mod:`.params`), the registry of kinds
and their detectors (:mod:`.kinds`), the SQL they share (:mod:`.sql`) and what a detector
yields (:mod:`.finding`). The tools rule authors run (check, test, explain, backtest,
calibrate) use the engine and live above it, in :mod:`monitor.ruletools`.
"""
