"""The workflow gate (``POST /api/v1/gate``, ``permit-monitor gate check``) — the ``gate``
section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, did_you_mean
from .settings import Setting, declared, read_section, section

FAIL_MODES = ("open", "closed")

GATE_SETTINGS: tuple[Setting, ...] = (
    Setting("budget_ms", 300, int,
            "The gate answers within this many milliseconds: when the database cannot "
            "answer in time, the answer is the degraded one (see fail), and it is logged."),
    Setting("fail", "open", str,
            "The degraded answer: open (allow, marked degraded: the workflow goes on and "
            "the nightly run still finds what it should have refused) or closed (deny)."),
    Setting("hold_resend_minutes", 60, int,
            "A hold (中止流程) the workflow system has not acknowledged (POST "
            "/api/v1/holds/{id}/ack) is sent again this long after it was last sent."),
    Setting("workers", 8, int,
            "Gate decisions evaluated at once by one server process (more wait their turn, "
            "within the budget)."),
)


@dataclass(frozen=True)
class GateConfig:
    budget_ms: int = declared(GATE_SETTINGS, "budget_ms")
    fail: str = declared(GATE_SETTINGS, "fail")
    workers: int = declared(GATE_SETTINGS, "workers")
    hold_resend_minutes: int = declared(GATE_SETTINGS, "hold_resend_minutes")


def load_gate(raw: Any, where: str) -> GateConfig:
    values = read_section(section(raw, "gate", where), GATE_SETTINGS, where)
    if values["fail"] not in FAIL_MODES:
        raise ConfigError(where, raw.line_of("fail"), f"'gate.fail' must be open or closed, "
                          f"got {values['fail']!r}{did_you_mean(values['fail'], FAIL_MODES)}")
    for name in ("budget_ms", "workers", "hold_resend_minutes"):
        if values[name] < 1:
            raise ConfigError(where, raw.line_of(name), f"'gate.{name}' must be at least 1")
    return GateConfig(**values)
