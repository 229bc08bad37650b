"""Rules: YAML files naming a kind from a fixed registry, with typed parameters."""
