"""Reports and scorecards: the ``language`` they are written in and the ``scores`` section,
the weights of the scorecard (绩效考评)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError, did_you_mean
from ..yamlsrc import LineDict, check_keys
from .settings import Setting, declared, line, section

LANGUAGES = ("zh", "en")  # each one's words: monitor/report/labels.py

SCORE_SETTINGS: tuple[Setting, ...] = (
    Setting("themes", {"regular": 30, "timeliness": 30, "fees": 20, "supervision": 10,
                       "voice": 10}, dict,
            "Points each theme starts with (regular handling, timeliness, fees, supervision "
            "response, citizens' ratings and complaints 评议投诉); they add up to the total, "
            "100 by default."),
    Setting("kind_themes", {"overdue": "timeliness", "unpaid_fee": "fees",
                            "fee_waiver": "fees", "fee_reconciliation": "fees",
                            "inactive_monitor": "supervision", "bad_rating": "voice",
                            "complaint": "voice", "rating_contradiction": "voice"}, dict,
            "Rule kind → theme its findings are deducted from; other kinds: regular."),
    Setting("warning", 0.5, float, "Points deducted per warning (临期预警) finding."),
    Setting("yellow", 2.0, float, "Points deducted per yellow-card finding."),
    Setting("red", 5.0, float, "Points deducted per red-card finding."),
    Setting("unresolved", 1.0, float,
            "Points deducted (supervision response) per alert of the period still open."),
    Setting("escalated", 2.0, float,
            "Points deducted (supervision response) per alert escalated to tier 2."),
    Setting("failed_spot_check", 2.0, float,
            "Points deducted (regular handling) per failed spot check (抽检)."),
)
THEMES = ("regular", "timeliness", "fees", "supervision", "voice")


@dataclass(frozen=True)
class ScoreWeights:
    themes: Mapping[str, float] = declared(SCORE_SETTINGS, "themes")
    kind_themes: Mapping[str, str] = declared(SCORE_SETTINGS, "kind_themes")
    warning: float = declared(SCORE_SETTINGS, "warning")
    yellow: float = declared(SCORE_SETTINGS, "yellow")
    red: float = declared(SCORE_SETTINGS, "red")
    unresolved: float = declared(SCORE_SETTINGS, "unresolved")
    escalated: float = declared(SCORE_SETTINGS, "escalated")
    failed_spot_check: float = declared(SCORE_SETTINGS, "failed_spot_check")


def load_language(raw: LineDict, value: str, where: str) -> str:
    """The ``language`` setting, one of :data:`LANGUAGES`."""
    if value not in LANGUAGES:
        raise ConfigError(where, raw.line_of("language"),
                          f"unknown language '{value}'{did_you_mean(value, LANGUAGES)}; one of "
                          f"{', '.join(LANGUAGES)}")
    return value


def load_scores(raw: Any, where: str) -> ScoreWeights:
    """The ``scores`` section of a config file, validated."""
    raw = section(raw, "scores", where)
    check_keys(raw, {s.name for s in SCORE_SETTINGS}, where, ConfigError)
    values: dict[str, Any] = {}
    for s in SCORE_SETTINGS:
        value = raw.get(s.name)
        if value is None:
            values[s.name] = s.default
        elif s.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(where, raw.line_of(s.name),
                                  f"'scores.{s.name}' must be a number of points, at least 0")
            values[s.name] = float(value)
        elif not isinstance(value, dict):
            raise ConfigError(where, raw.line_of(s.name), f"'scores.{s.name}' must be a mapping")
        else:
            values[s.name] = value
    themes = dict(values["themes"])
    for theme, points in themes.items():
        if theme not in THEMES:
            raise ConfigError(where, line(values["themes"], theme),
                              f"unknown theme '{theme}'{did_you_mean(str(theme), THEMES)}; "
                              f"themes: {', '.join(THEMES)}")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise ConfigError(where, line(values["themes"], theme),
                              f"'scores.themes.{theme}' must be a number of points")
    for kind, theme in values["kind_themes"].items():
        if theme not in THEMES:
            raise ConfigError(where, line(values["kind_themes"], kind),
                              f"kind '{kind}': unknown theme '{theme}'"
                              f"{did_you_mean(str(theme), THEMES)}; themes: {', '.join(THEMES)}")
    values["themes"] = MappingProxyType({t: float(themes.get(t, 0)) for t in THEMES})
    values["kind_themes"] = MappingProxyType({str(k): str(v)
                                              for k, v in values["kind_themes"].items()})
    return ScoreWeights(**values)
