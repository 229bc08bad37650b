"""Rules: YAML files naming a kind from a fixed registry, with typed parameters."""

from pathlib import Path

# The default rule files shipped with permit-monitor (the repository's rules/ folder).
SHIPPED_RULES = Path(__file__).resolve().parents[2] / "rules"
