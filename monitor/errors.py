"""Errors that reach people as one clear line.

Everything the user can provoke raises a :class:`MonitorError` subclass; the CLI turns
it into ``Error: …`` and exit code 1 in one place. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class MonitorError(Exception):
    """Root of every error a user can cause (bad file, bad setting, database down)."""


class StoreError(MonitorError):
    """The database cannot be reached or is not in a usable state."""


class IngestError(MonitorError):
    """An input file cannot be read at all (rows with problems are quarantined instead)."""


class CalendarError(MonitorError):
    """A working-day calculation reaches a year with no known holiday arrangement."""


class SourceError(MonitorError):
    """A problem in a YAML file a person edits, located at ``path:line``."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


class ConfigError(SourceError):
    """config.yaml is missing, unreadable or has a wrong key or value."""


class RuleError(SourceError):
    """A rule file has a wrong key, type or value (reported as path:line: message)."""


class CatalogError(SourceError):
    """The catalog YAML has a wrong key, type or value."""


class SourceErrors(MonitorError):
    """Several located problems found in one pass, reported together, one per line."""

    def __init__(self, errors: Sequence[SourceError]):
        self.errors = list(errors)
        shown = [str(e) for e in errors[:20]]
        if len(errors) > 20:
            shown.append(f"… and {len(errors) - 20} more problems")
        super().__init__("\n".join(shown))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class SupervisionError(MonitorError):
    """An action on an alert was refused (who, which alert, or in what state)."""


class NotFound(SupervisionError):
    """No such alert or user."""


class NotAllowed(SupervisionError):
    """The acting user's role or department does not allow the action."""


class InvalidTransition(SupervisionError):
    """The alert is not in a state where the action makes sense, or a required part (a
    disposition, a note) is missing."""


class SinkError(MonitorError):
    """A notification sink cannot be set up (e.g. its secret's environment variable is not
    set); nothing is claimed from the outbox, so nothing is lost."""


def usage(exc: MonitorError) -> MonitorError:
    """``exc`` marked a usage error (the CLI exits 2, not 1): a value given on the command
    line that the user fixes by typing it again (a malformed --period, a missing --note)."""
    exc.exit_code = 2  # type: ignore[attr-defined]
    return exc


class UsageProblem(MonitorError):
    """A command-line value names nothing that exists (``--status opne``): a usage error, so
    the CLI exits 2 (not 1) with the option, the value and a "did you mean"."""

    exit_code = 2

    def __init__(self, option: str, value: str, what: str, known: Iterable[str]):
        known = sorted(set(known))
        self.option, self.value = option, value
        listed = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
        super().__init__(f"Invalid value for '{option}': no {what} {value!r}"
                         f"{did_you_mean(value, known)}; known: {listed or 'none yet'}")
