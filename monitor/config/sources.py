"""The ``sources`` section: databases ``ingest pull`` reads events from, past a watermark."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError
from ..yamlsrc import LineDict, check_keys
from .settings import section

SOURCE_KEYS = ("url", "url_env", "query", "watermark", "start")


@dataclass(frozen=True)
class PullSource:
    """A source database read by ``ingest pull``: rows past the watermark, in the contract."""

    name: str
    query: str
    watermark: str
    url: str | None = None
    url_env: str | None = None
    start: str | None = None  # the watermark before the first pull (unset: everything)

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str:
        environ = os.environ if environ is None else environ
        if self.url_env:
            if not environ.get(self.url_env):
                raise ConfigError("config.yaml", None, f"source '{self.name}': environment "
                                  f"variable {self.url_env} (url_env) is not set")
            return environ[self.url_env]
        return self.url or ""


def load_sources(raw: Any, where: str) -> Mapping[str, PullSource]:
    """The ``sources`` section of a config file, validated."""
    out = {}
    for name, spec in section(raw, "sources", where).items():
        line = raw.line_of(name)
        if not isinstance(spec, LineDict):
            raise ConfigError(where, line, f"source '{name}' must be a mapping with url_env "
                                           "(or url), query and watermark")
        check_keys(spec, set(SOURCE_KEYS), where, ConfigError, required=("query", "watermark"))
        if not (spec.get("url") or spec.get("url_env")):
            raise ConfigError(where, line, f"source '{name}': give url_env (the name of an "
                                           "environment variable holding the URL) or url")
        for key in SOURCE_KEYS:
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise ConfigError(where, spec.line_of(key),
                                  f"source '{name}': '{key}' must be text")
        if ":" in str(spec.get("url") or "").partition("@")[0].partition("//")[2]:
            raise ConfigError(where, spec.line_of("url"), f"source '{name}': a password does "
                              "not belong in config.yaml; put the URL in an environment "
                              "variable and name it with url_env")
        out[str(name)] = PullSource(str(name), spec["query"], spec["watermark"],
                                    spec.get("url"), spec.get("url_env"), spec.get("start"))
    return MappingProxyType(out)
