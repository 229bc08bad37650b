"""permit-monitor command line: parse options, call one ``monitor`` function, format.

Errors a user can cause (``MonitorError``) become one ``Error: …`` line and exit code 1
(2 for a usage error: click's own, or a MonitorError marked ``exit_code = 2``), here and
nowhere else; anything else is a bug and keeps its traceback.

The commands, by group, in the order of this file (``--help`` lists them alphabetically):

* ingest — ``ingest catalog|events|receipts|activity|pull``; ``quarantine list|retry``;
* audit and alerts — ``run``, ``escalate``; ``alerts list|show|ack|resolve|confirm|reject|
  order|escalate``; ``notify flush|list``; ``holds list|release``; ``audit verify|show`` (the
  trail);
* supervision — ``exemptions add|list|revoke``; ``sample`` and ``sample record`` (spot
  checks);
* rules — ``rules check|test|explain|backtest|calibrate`` (tools for rule authors);
* reports — ``report``, ``scores``;
* administration — ``init``, ``settings``, ``demo``; ``nightly``, ``serve`` and ``runs list``
  (unattended operation); ``users``, ``tokens`` and ``web`` (the control center); ``gate
  check`` (the workflow gate).

Before them: the root group and what commands share (options, ``--as-of``, the database
lease, list output).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from monitor import __version__
from monitor.config import (MAPPING_SETTINGS, NOTIFY_SETTINGS, SETTINGS, load_config,
                            resolve_database_url)
from monitor.errors import MonitorError

# Why the imports inside the commands: only click and the config tables load at start-up,
# so `permit-monitor --help`, every command's --help and a usage error answer in ~0.1 s of
# CPU; loading SQLAlchemy, the engine, the jobs, the report writers and the demo up front
# made that ~0.65 s (measured). Each command imports what it uses in its body; keep it so.

log = logging.getLogger("monitor")


# ------------------------------------------------------- the root group and what commands share


class App:
    """What every command needs, built on first use so ``--help`` never touches the database."""

    def __init__(self, config_path: str | None, db_url: str | None, may_create: bool = True):
        self.config_path, self.db_url, self.may_create = config_path, db_url, may_create

    @cached_property
    def config(self):
        from monitor.logs import use_zone

        config = load_config(self.config_path)
        use_zone(config.tz)  # log lines in the county's time from here on
        return config

    @cached_property
    def url(self) -> str:
        return resolve_database_url(self.config, self.db_url)

    @cached_property
    def engine(self):
        from monitor.db import open_store
        from monitor.trail import adopt

        from monitor.supervised import ensure_baseline

        from monitor.regionnames import adopt_name
        from monitor.regionstore import adopt_region

        engine = open_store(self.url, create=self.may_create, region=self.config.region)
        adopt(engine, self.config.audit.hash, self.config.region)  # the store's own chain
        adopt_region(engine, self.config.region)  # once, on a store not yet named
        adopt_name(engine, self.config.region, self.config.region_name, self.now())
        ensure_baseline(engine, self.now())  # once, on a store older than migration 0015
        return engine

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)


class MonitorGroup(click.Group):
    """The root group: the one place a MonitorError becomes ``Error: …`` and exit 1 (2 for
    a :class:`~monitor.errors.UsageProblem`, a value naming nothing that exists)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            from monitor.masking import mask

            for line in mask(str(exc)).splitlines() or [type(exc).__name__]:
                click.echo(f"Error: {line}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))


pass_app = click.make_pass_decorator(App)


@click.group(cls=MonitorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar="MONITOR_CONFIG",
              help="config.yaml to use [default: ./config.yaml if present; env MONITOR_CONFIG].")
@click.option("--db", "db_url", metavar="URL",
              help="Database URL; overrides $MONITOR_DATABASE_URL and config.yaml. "
                   "E.g. sqlite:///monitor.db, postgresql+psycopg://user@host/db")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.version_option(__version__, prog_name="permit-monitor")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, db_url: str | None, verbose: int) -> None:
    """Electronic supervision (电子监察) of administrative permits.

    Ingests a permit system's workflow log, the catalog of power items and the treasury's
    fee receipts into a database (SQLite by default, PostgreSQL in production), so rules
    can find back-filled entries, fast approvals, overdue cases and offline fees.

    \b
    Start here:
      permit-monitor demo                       build and audit a sample county
      permit-monitor ingest catalog catalog.yaml
      permit-monitor ingest events events.csv   (CSV, JSON Lines, XES; .gz; - for stdin)
      permit-monitor quarantine list            rows set aside, with file, line and reason
      permit-monitor run                        evaluate the rules; alerts list shows them
      permit-monitor report --period 2026-01    the monthly report (--format html|xlsx --out F)
      permit-monitor nightly                    the whole audit in one pass (cron); serve: daemon
      permit-monitor rules test FILE            golden tests before a rule change ships

    \b
    Which database: --db, else $MONITOR_DATABASE_URL, else config.yaml's database_url, else
    monitor.db beside config.yaml (only init, demo, ingest, nightly and serve create a
    database; the other commands refuse a missing one). After `demo`:
      export MONITOR_DATABASE_URL=sqlite:///permit-monitor-demo/monitor.db

    \b
    Every list command takes --format table|json|csv; every acting user is --by USER.
    Exit codes: 0 ok · 1 error (one line `Error: …` on stderr) · 2 usage error (unknown
    option, command or value: a did-you-mean names the closest) · 3 only with
    `nightly --exit-code`: the pass went well and raised new red alerts.
    """
    from monitor.logs import configure

    configure(max(logging.WARNING - 10 * verbose, logging.DEBUG))  # county time, see App
    ctx.obj = App(config_path, db_url, may_create=ctx.invoked_subcommand in CREATES_STORE)


# The commands that may create a database; every other one refuses a missing store (naming
# its URL and how to create one) instead of creating an empty one and answering from it.
CREATES_STORE = frozenset({"init", "demo", "ingest", "nightly", "serve"})


LIST_FORMATS = click.Choice(["table", "json", "csv"])


def format_option(f):
    """``--format table|json|csv`` of every list command (``fmt``); the older ``--json`` (one
    object per line) stays as a hidden alias. JSON is one array, CSV has a header row."""
    @functools.wraps(f)
    def with_format(*args, fmt: str, as_jsonl: bool, **kwargs):
        return f(*args, fmt="jsonl" if as_jsonl else fmt, **kwargs)

    with_format = click.option("--json", "as_jsonl", is_flag=True, hidden=True)(with_format)
    return click.option("--format", "fmt", type=LIST_FORMATS, default="table",
                        show_default=True, help="table; json: one array; csv: a header row."
                        )(with_format)


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print exactly one JSON object on stdout instead of text.")
by_option = click.option("--by", "by", required=True, metavar="USER",
                         help="Who acts: a user id from the catalog (checked against its roles).")
note_option = click.option("--note", help="What was done, or why (recorded in the trail).")


def by_option_was(old: str, help: str):
    """``--by USER`` (required), for a command that used to spell it ``old`` (e.g.
    ``--approved-by``): the old spelling still works, hidden from --help."""
    def decorate(f):
        @functools.wraps(f)
        def with_by(*args, by: str | None, by_old: str | None, **kwargs):
            if by and by_old and by != by_old:
                raise click.UsageError(f"--by {by} and {old} {by_old} disagree: give --by only",
                                       click.get_current_context())
            if not (by or by_old):
                raise click.UsageError("Missing option '--by'.", click.get_current_context())
            return f(*args, by=by or by_old, **kwargs)

        with_by = click.option(old, "by_old", metavar="USER", hidden=True)(with_by)
        return click.option("--by", "by", metavar="USER", help=f"{help} [required]")(with_by)

    return decorate


def period_options(f):
    """--period, --from, --to and --department, shared by report, scores and sample."""
    for option in reversed((
            click.option("--period", metavar="PERIOD",
                         help="A month (2026-01) or a quarter (2026-Q1) [default: last month]."),
            click.option("--from", "date_from", metavar="DATE",
                         help="First day of a custom period (with --to)."),
            click.option("--to", "date_to", metavar="DATE", help="Last day (inclusive)."),
            click.option("--department", metavar="CODE", help="Only this department."))):
        f = option(f)
    return f


def _as_of(app: App, text: str | None) -> datetime:
    """--as-of: ISO 8601 (naive = configured timezone; a bare date = its start); default now."""
    from monitor.timeutil import ValueProblem, parse_timestamp

    if not text:
        return app.now()
    try:
        return parse_timestamp(text if len(text) > 10 else f"{text}T00:00:00", app.config.tz)
    except ValueProblem as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None


def _audit_as_of(app: App, text: str | None) -> datetime:
    """--as-of of a command that audits (run, escalate, alerts list --overdue, rules
    explain): without it, a database that carries its own moment (the demo's, see
    monitor/meta.py) is audited as of then — said on stderr — and any other as of now."""
    from monitor.meta import audit_moment

    if text or (pinned := audit_moment(app.engine)) is None:
        return _as_of(app, text)
    local = pinned.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
    click.echo(f"as of {local} ({app.config.timezone}), the moment this database describes "
               "(stored by `permit-monitor demo`); --as-of for another", err=True)
    return pinned


def _period(app: App, period, date_from, date_to, department: str | None = None):
    """The period of --period/--from/--to; a --department naming none is a usage error."""
    from monitor.filters import check_filters
    from monitor.report import parse_period

    if department is not None:
        check_filters(app.engine, department=department)

    return parse_period(period, date_from, date_to, app.now().astimezone(app.config.tz).date())


def _exclusive(app: App, needed: bool = True, name: str | None = None):
    """The database lease around a command that writes alerts (``monitor``, the main
    lease) or delivers (``outbox``); see lease.py."""
    from contextlib import nullcontext

    from monitor.jobs import exclusive

    from monitor.lease import MAIN

    return exclusive(app.engine, app.config, app.now, name or MAIN) if needed \
        else nullcontext()


def _policy(app: App):
    """The policy of the rules in force, each county's own rules' deadlines and status."""
    from monitor.regionrules import county_policy

    return county_policy(app.config)


def _echo_rows(rows: Iterable[Any], text: Callable[[Any], str], *, fmt: str = "table",
               record: Callable[[Any], dict[str, Any]] | None = None,
               columns: Sequence[str] = (),
               empty: str | None = None) -> None:
    """The one way a list command prints its rows, as they come, in ``fmt``: ``table``,
    ``text(row)`` for each row (a line, or several); ``jsonl``, ``record(row)`` as one JSON
    object per line; ``json``, the records as one JSON array; ``csv``, a header of
    ``columns`` (default: the first record's fields), then each record's values (dicts and
    lists as JSON). ``record`` defaults to :func:`monitor.records.record`. ``empty``, when
    given, is said on stderr if a table had no row."""
    from monitor.records import record as fields

    def as_record(row: Any) -> dict[str, Any]:
        return (record or fields)(row)

    shown = 0
    if fmt == "json":
        rows = list(rows)
        shown = len(rows)
        click.echo(json.dumps([as_record(r) for r in rows], ensure_ascii=False, indent=1))
    elif fmt == "csv":
        import csv

        from monitor.report.cells import safe_row

        writer = csv.writer(sys.stdout)
        if columns:
            writer.writerow(columns)
        for r in rows:
            shown += 1
            d = as_record(r)
            if not columns:  # the record's own fields, in order
                columns = list(d)
                writer.writerow(columns)
            writer.writerow(safe_row([json.dumps(d[c], ensure_ascii=False)
                                      if isinstance(d[c], (dict, list)) else d[c]
                                      for c in columns]))
    else:
        for r in rows:
            shown += 1
            click.echo(json.dumps(as_record(r), ensure_ascii=False) if fmt == "jsonl" else text(r))
    if not shown and empty and fmt == "table":
        click.echo(empty, err=True)


# --------------------------------------------------------------------------------------- ingest


def _progress_factory():
    """A click progress bar per file on an interactive terminal; nothing under cron."""
    if not sys.stderr.isatty():
        return None

    def factory(name: str, size: int | None):
        if not size:
            return None
        bar = click.progressbar(length=size, label=name, file=sys.stderr, show_eta=True)
        bar.__enter__()
        seen = [0]

        def report(position: int) -> None:
            bar.update(max(position - seen[0], 0))
            seen[0] = position
            if position >= size:
                bar.__exit__(None, None, None)

        return report

    return factory


def _echo_tally(label: str, t) -> None:
    parts = [f"read {t.read:,}", f"inserted {t.inserted:,}"]
    if t.replaced:
        parts.append(f"replaced {t.replaced:,}")
    parts += [f"duplicates {t.duplicates:,}", f"quarantined {t.quarantined:,}"]
    click.echo(f"{label}: " + " · ".join(parts))
    if t.by_reason:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(t.by_reason.items()))
        click.echo(f"  quarantined by reason: {reasons}")


def _echo_results(results, as_json: bool) -> None:
    """Print each source's tally as it completes (text), or one JSON object at the end."""
    from monitor.ingest import Tally

    total, done = Tally(), []
    for r in results:
        total += r.tally
        done.append(r)
        if not as_json:
            _echo_tally(r.source, r.tally)
    if as_json:
        out = total.as_dict()
        out["files"] = [{"source": r.source, **r.tally.as_dict()} for r in done]
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    if len(done) > 1:
        _echo_tally("total", total)
    if total.quarantined:
        click.echo("  see: permit-monitor quarantine list")


def _encoding(_ctx, _param, value: str | None) -> str | None:
    from monitor.config import EncodingProblem, check_encoding

    try:
        return None if value is None else check_encoding(value)
    except EncodingProblem as exc:
        raise click.BadParameter(str(exc)) from None


encoding_option = click.option(
    "--encoding", callback=_encoding, metavar="NAME",
    help="Text encoding of CSV and JSON Lines files: auto (UTF-8 with or without BOM if the "
         "whole file decodes, else GB18030, which covers GBK), or a codec such as gb18030, "
         "big5 [default: config.yaml's encoding, auto].")


def _region(_ctx, _param, value: str | None) -> str | None:
    from monitor.regions import problem

    reason = None if value is None else problem(value)
    if reason:
        raise click.BadParameter(reason)
    return value


region_option = click.option(
    "--region", callback=_region, metavar="CODE",
    help="The county these rows are of: its administrative division code (GB/T 2260, six "
         "digits), for a store that holds several counties [default: config.yaml's region].")


list_region_option = click.option(
    "--region", callback=_region, metavar="CODE",
    help="Only alerts of this region: a county's code (GB/T 2260), or a city's or "
         "province's, which covers its counties [default: every region].")


def _of_region(app: App, region: str | None):
    """The config an ingest runs with: config.yaml's, its region replaced by --region."""
    from dataclasses import replace

    return app.config if region is None else replace(app.config, region=region)


@cli.group()
def ingest() -> None:
    """Load the catalog, workflow events or fiscal receipts into the database.

    Every run is idempotent: re-ingesting a file adds nothing. Rows that break the
    input contract are set aside in the quarantine with file, line and reason.
    """


@ingest.command("catalog")
@region_option
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def ingest_catalog_cmd(app: App, region: str | None, file: str) -> None:
    """Load or update departments, users and power items from a catalog YAML FILE.

    Entries are matched by code (users by id) and updated in place; events are never
    touched, and entries missing from FILE are kept. The load is on the trail as a diff;
    making a user tier 2 or moving a monitor waits for a tier-2 monitor's approval
    (permit-monitor grants), except in a store with no tier-2 monitor yet (bootstrap).
    """
    from monitor.catalog import ingest_catalog

    result = ingest_catalog(app.engine, file, app.now(), _os_user(),
                            limits=app.config.limits.yaml,
                            region=_of_region(app, region).region)
    for name in ("departments", "users", "items"):
        click.echo(f"{name}: added {result.added[name]:,} · updated {result.updated[name]:,}"
                   f" · unchanged {result.unchanged[name]:,}")
    if result.bootstrapped:
        click.echo(f"first tier-2 monitors (no tier 2 before: bootstrap, on the trail): "
                   f"{', '.join(result.bootstrapped)}")
    if result.pending:
        click.echo(f"{len(result.pending)} grant(s) wait for a tier-2 monitor's approval "
                   f"(tier 2, or a monitor's move): permit-monitor grants list", err=True)


@ingest.command("events")
@region_option
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "xes", "xlsx"]),
              help="Input format [default: from the file name; sniffed for stdin].")
@encoding_option
@click.option("--mapping", "mapping", metavar="NAME",
              help="Read another system's export through a mapping: a name under "
                   "'mappings:' in config.yaml, or a mapping .yaml file (docs/mappings.md).")
@click.option("--jobs", type=click.IntRange(min=0), metavar="N",
              help="Processes that read an uncompressed XES file at once, each a part of it, "
                   "while this one stores in file order: 1 reads the whole file in one, 0 "
                   "one per CPU but one; more only helps with a free CPU for each "
                   "(docs/xes.md) [default: config.yaml's ingest_jobs, 0].")
@json_option
@pass_app
def ingest_events_cmd(app: App, region: str | None, files: tuple[str, ...], fmt: str | None,
                      encoding: str, mapping: str | None, jobs: int | None,
                      as_json: bool) -> None:
    """Load workflow events from FILES (CSV, JSON Lines, Excel .xlsx or XES; .gz too; -
    for stdin).

    \b
    Required columns: event_id, case_id, item_code, step, occurred_at.
    Optional: department, actor, recorded_at, amount, channel, attachments, days, note,
    precision (second, minute, hour, day), system (true for a system event),
    region (the row's county, GB/T 2260: a province-wide file of several counties;
    empty: --region's, else config.yaml's).
    With --mapping the files keep their own columns (e.g. a Chinese export's
    办件编号,事项编码,环节,办理人,办理时间) and the mapping says what each one is.
    The same event_id with the same content is a duplicate and skipped; with different
    content it is quarantined as a conflict and the first version is kept.
    """
    from dataclasses import replace

    from monitor.ingest import ingest_events

    config = _of_region(app, region)
    if jobs is not None:
        config = replace(config, ingest_jobs=jobs)
    results = ingest_events(app.engine, config, list(files), app.now(), fmt=fmt,
                            encoding=encoding, progress=_progress_factory(), mapping=mapping)
    _echo_results(results, as_json)


@ingest.command("receipts")
@region_option
@click.argument("files", nargs=-1, required=True)
@encoding_option
@json_option
@pass_app
def ingest_receipts_cmd(app: App, region: str | None, files: tuple[str, ...], encoding: str,
                        as_json: bool) -> None:
    """Load fiscal receipts (CSV or .xlsx: department, period YYYY-MM, amount in yuan).

    A department-month already stored is replaced by the new amount.
    """
    from monitor.ingest import ingest_receipts

    results = ingest_receipts(app.engine, _of_region(app, region), list(files), app.now(),
                              encoding=encoding, progress=_progress_factory())
    _echo_results(results, as_json)


@ingest.command("activity")
@region_option
@click.argument("files", nargs=-1, required=True)
@encoding_option
@json_option
@pass_app
def ingest_activity_cmd(app: App, region: str | None, files: tuple[str, ...], encoding: str,
                        as_json: bool) -> None:
    """Load the monitoring log (监察日志): CSV or .xlsx user_id, at, action
    (login|logout|handle).

    \b
    Example:
      permit-monitor ingest activity activity-2026-01.csv
    Rows already stored are duplicates; bad rows are quarantined with line and reason.
    The report shows daily online rates of handlers and monitors from the logins.
    """
    from monitor.ingest import ingest_activity

    results = ingest_activity(app.engine, _of_region(app, region), list(files), app.now(),
                              encoding=encoding, progress=_progress_factory())
    _echo_results(results, as_json)


@ingest.command("ratings")
@region_option
@click.argument("files", nargs=-1, required=True)
@encoding_option
@json_option
@pass_app
def ingest_ratings_cmd(app: App, region: str | None, files: tuple[str, ...], encoding: str,
                       as_json: bool) -> None:
    """Load citizens' ratings (好差评, GB/T 39734): CSV, JSON Lines or Excel (.xlsx).

    \b
    Columns: rating_id, case_id, item_code, department, rated_at, channel,
             score (1 非常不满意 … 5 非常满意), tags (差评 reasons, ';'-separated), text
    Example:
      permit-monitor ingest ratings ratings-2026-01.csv
    A rating_id already stored is a duplicate; bad rows are quarantined with line and
    reason. Each 差评 becomes a finding of the bad_rating rule at the next run.
    """
    from monitor.ingest import ingest_voice

    results = ingest_voice("ratings", app.engine, _of_region(app, region), list(files), app.now(),
                           encoding=encoding, progress=_progress_factory())
    _echo_results(results, as_json)


@ingest.command("complaints")
@region_option
@click.argument("files", nargs=-1, required=True)
@encoding_option
@json_option
@pass_app
def ingest_complaints_cmd(app: App, region: str | None, files: tuple[str, ...], encoding: str,
                          as_json: bool) -> None:
    """Load efficiency complaints (效能投诉: 12345, 窗口, 信访 …): CSV, JSONL or .xlsx.

    \b
    Columns: complaint_id, received_at, channel, department, case_id (optional),
             category, text
    Example:
      permit-monitor ingest complaints complaints-2026-01.csv
    A complaint_id already stored is a duplicate; bad rows are quarantined with line and
    reason. Each complaint becomes a finding of the complaint rule at the next run.
    """
    from monitor.ingest import ingest_voice

    results = ingest_voice("complaints", app.engine, _of_region(app, region), list(files),
                           app.now(),
                           encoding=encoding, progress=_progress_factory())
    _echo_results(results, as_json)


@ingest.command("pull")
@click.argument("name", required=False)
@json_option
@pass_app
def ingest_pull_cmd(app: App, name: str | None, as_json: bool) -> None:
    """Fetch new events from the source databases of config.yaml's `sources:` (or NAME).

    Only rows past the stored watermark are read; they go through the same validation
    and quarantine as a file.

    \b
    sources:
      workflow:
        url_env: WORKFLOW_DB_URL        # the URL (with its password) from the environment
        query: SELECT id, evt_id AS event_id, case_no AS case_id, … FROM wf_log
        watermark: id                   # grows with every new row
    """
    from monitor.ingest import SourceResult
    from monitor.pull import pull

    names = [name] if name else list(app.config.sources)
    if not names:
        raise MonitorError("no sources configured (config.yaml: sources:)")
    with _exclusive(app):
        _echo_results((SourceResult(f"pull:{n}", pull(app.engine, app.config, n, app.now()))
                       for n in names), as_json)


@cli.group()
def quarantine() -> None:
    """Rows set aside during ingestion: list them, retry them after a catalog fix."""


@quarantine.command("list")
@click.option("--reason", help="Only this reason (e.g. unknown_item, bad_timestamp).")
@click.option("--source", help="Only rows from this file.")
@click.option("--all", "include_resolved", is_flag=True, help="Include rows since resolved.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many rows.")
@format_option
@pass_app
def quarantine_list(app: App, reason, source, include_resolved, limit, fmt) -> None:
    """Show quarantined rows: source:line, reason, detail and the raw row."""
    from monitor.ingest.quarantine import list_quarantine

    def text(q) -> str:
        state = f" [{q.resolution}]" if q.resolution else ""
        return f"{q.source}:{q.line}: {q.reason}: {q.detail}{state}\n    {q.raw}"

    _echo_rows(list_quarantine(app.engine, reason=reason, source=source,
                               include_resolved=include_resolved, limit=limit),
               text, fmt=fmt,
               record=lambda q: {"id": q.id, "kind": q.kind, "source": q.source,
                                 "line": q.line, "reason": q.reason, "detail": q.detail,
                                 "raw": json.loads(q.raw), "resolution": q.resolution},
               empty="quarantine is empty" if not (reason or source) else "no matching rows")


@quarantine.command("retry")
@json_option
@pass_app
def quarantine_retry(app: App, as_json: bool) -> None:
    """Re-validate quarantined rows; those that now pass (say after a catalog fix) are stored."""
    from monitor.ingest.quarantine import retry_quarantine

    tally = retry_quarantine(app.engine, app.config, app.now())
    if as_json:
        click.echo(json.dumps(tally.as_dict(), ensure_ascii=False))
    else:
        _echo_tally("retried", tally)


# ----------------------------------------------------------------------------- audit and alerts


@cli.command()
@click.option("--as-of", "as_of", metavar="ISO8601",
              help="Evaluate as of this moment (default: now, or the demo's own moment). "
                   "Naive = configured timezone.")
@click.option("--rule", "rule_ids", multiple=True, metavar="ID",
              help="Only this rule (repeatable); runs it even if disabled.")
@click.option("--dry-run", is_flag=True, help="Print the findings; write nothing.")
@click.option("--full", is_flag=True,
              help="Re-evaluate everything, not only what changed since the last run.")
@click.option("--rewind", is_flag=True,
              help="Allow an --as-of earlier than the rules' latest evaluation (says what "
                   "it will change; refused without this).")
@click.option("--jobs", type=click.IntRange(min=1), metavar="N",
              help="Evaluate a store of several counties in N processes, one county each "
                   "at a time (default: config evaluate_jobs).")
@pass_app
def run(app: App, as_of: str | None, rule_ids: tuple[str, ...], dry_run: bool,
        full: bool, rewind: bool, jobs: int | None) -> None:
    """Evaluate the rules in rules_dir and store what they find as alerts.

    Incremental: each rule looks again only at what new events touch since its last
    run (a changed rule is evaluated in full). An --as-of earlier than the rules' latest
    evaluation would rewrite the evidence of alerts raised since: refused unless --rewind,
    which first says what it will change.
    Re-running never duplicates an alert: each is kept once per rule and subject (the
    case, the burst, the department-month). Exit code 1 if any rule failed; the others
    still ran.
    """
    from monitor.auditpass import audit_pass
    from monitor.engine import render
    from monitor.rules.loader import load_rules

    from monitor.rewind import check_rewind

    moment = _audit_as_of(app, as_of)
    rules = load_rules([app.config.rules_dir], app.config.limits)
    back = None if dry_run or as_of is None else check_rewind(app.engine, moment, rule_ids)
    if back and not rewind:
        raise click.UsageError(back.describe(moment, app.config.tz) + "; give --rewind to "
                               "do it, or --dry-run to look without writing")
    if back:
        click.echo(f"rewinding: {back.describe(moment, app.config.tz)}", err=True)
    with _exclusive(app, not dry_run):  # never at the same time as nightly/serve
        done = audit_pass(app.engine, app.config, moment, rules=rules,
                          stages=("evaluate",) if dry_run else ("evaluate", "escalate"),
                          rule_ids=rule_ids, dry_run=dry_run, full=full, jobs=jobs)
    outcomes = done.evaluation.outcomes if done.evaluation else []
    click.echo(f"as of {moment.astimezone(app.config.tz).isoformat()}"
               + (" (dry run: nothing written)" if dry_run else ""))
    failed = 0
    for o in outcomes:
        if o.error:
            failed += 1
            click.echo(f"  {o.rule.id:<22} FAILED: {o.error}")
            continue
        line = f"  {o.rule.id:<22} {o.found:>6,} findings"
        if o.stored:
            line += f" · new {o.stored.new:,} · updated {o.stored.changed:,}"
        line += " (incremental)" if o.incremental else ""
        click.echo(line)
        if dry_run:
            for f in o.findings:
                level, message = render(o.rule, f)
                click.echo(f"    [{level}] {message}")
    if done.escalation is not None:
        _echo_escalated(done.escalation, done.evaluation)
    from monitor.ruletools.flood import after_run

    for flood in after_run(app.engine, app.config, outcomes, moment, dry_run):
        click.echo(f"warning: {flood.message(app.config.flood_percent / 100)}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


def _echo_escalated(result, evaluation=None) -> None:
    """The supervision line; after an evaluation, its tier-1 messages are counted in."""
    told = evaluation.messages if evaluation is not None else 0
    line = (f"supervision: escalated {len(result.escalated):,} · reminded "
            f"{len(result.reminded):,} · messages queued {result.messages + told:,}")
    if evaluation is not None and evaluation.cleared:
        line += f" · cleared {evaluation.cleared:,}"
    if result.assigned:
        line += f" · deadlines given to {len(result.assigned):,} older alerts"
    click.echo(line)


@cli.command("escalate")
@click.option("--as-of", "as_of", metavar="ISO8601",
              help="As of this moment (default: now, or the demo's own moment). "
                   "Naive = configured timezone.")
@pass_app
def escalate_cmd(app: App, as_of: str | None) -> None:
    """Escalate tier-1 alerts past their deadline to tier 2, and send due reminders.

    Each escalation issues a supervision order (督办) to the department's tier-1 monitors
    with a new deadline and queues an SMS to both tiers; a tier-2 alert past its order's
    deadline reminds its monitors once every reminder_days working days. Also run at the
    end of every `permit-monitor run`. Then `permit-monitor notify flush` delivers.
    """
    from monitor.auditpass import audit_pass
    from monitor.regionrules import load_rule_sets

    with _exclusive(app):  # each county's own rules decide what escalates there
        done = audit_pass(app.engine, app.config, _audit_as_of(app, as_of), stages=("escalate",),
                          rules=lambda: load_rule_sets(app.config))
        _echo_escalated(done.escalation)


@cli.group()
def alerts() -> None:
    """Alerts raised by the rules: list them, show one with its evidence."""


@alerts.command("list")
@format_option
@click.option("--kind", help="Only this rule kind (e.g. step_too_fast).")
@click.option("--level", type=click.Choice(["warning", "yellow", "red"]))
@click.option("--department", metavar="[REGION:]CODE",
              help="Only this department: its code, or REGION:CODE (330106:D04) when several "
                   "counties of the store use the code (or add --region).")
@click.option("--status", help="Only this status (e.g. open).")
@click.option("--rule", "rule_id", help="Only this rule id.")
@click.option("--tier", type=click.IntRange(1, 2),
              help="Only alerts at this tier (1: the department, 2: the county office).")
@click.option("--overdue", is_flag=True,
              help="Only alerts still to be acted on whose handling deadline has passed.")
@click.option("--as-of", "as_of", metavar="ISO8601",
              help="For --overdue (default: now, or the demo's own moment).")
@click.option("--suppressed", is_flag=True,
              help="Only findings set aside by an exemption (not shown otherwise).")
@list_region_option
@pass_app
def alerts_list(app: App, fmt: str, kind, level, department, status, rule_id, tier, overdue,
                as_of, suppressed, region) -> None:
    """List alerts; JSON is one array, CSV has a header row.

    The table shows id, level, tier, status, department, handling deadline, rule, the
    finding's short title (a fee finding on a fine: 罚没款…), message.
    """
    from monitor.alerts import ALERT_FIELDS, jsonable, list_alerts
    from monitor.filters import check_filters, department_filter

    department, region = department_filter(app.engine, department, region)
    check_filters(app.engine, department=department, status=status, kind=kind, rule_id=rule_id)

    def text(r) -> str:
        due = r.due_on.isoformat() if r.due_on else "-"
        return (f"{r.id:>6}  {r.level:<7} T{r.tier} {r.status:<12} "
                f"{r.department or '-':<6} {due:<10} {r.rule_id:<18} "
                f"{(r.title or '').split('（')[0] or '-'}  {r.message}")

    today = _audit_as_of(app, as_of).astimezone(app.config.tz).date() if overdue else None
    _echo_rows(list_alerts(app.engine, kind=kind, level=level, department=department,
                           status=status, rule_id=rule_id, tier=tier, overdue_on=today,
                           suppressed=suppressed, region=region),
               text, fmt=fmt, record=lambda r: jsonable(r, app.config.tz), columns=ALERT_FIELDS,
               empty="no alerts")


@alerts.command("show")
@click.argument("alert_id", type=int)
@pass_app
def alerts_show(app: App, alert_id: int) -> None:
    """Show one alert with its evidence (the events and figures behind it); times in the
    configured time zone, with its offset."""
    from monitor.alerts import jsonable, list_alerts

    rows = list(list_alerts(app.engine, alert_id=alert_id))
    if not rows:
        raise MonitorError(f"no alert with id {alert_id}")
    click.echo(json.dumps(jsonable(rows[0], app.config.tz), ensure_ascii=False, indent=2))


def _echo_done(app: App, done) -> None:
    line = f"alert {done.alert_id}: {done.action} · tier {done.tier} · {done.status}"
    if done.order_id:
        line += f" · order {done.order_id}"
    if done.due_on and done.status in ("open", "acknowledged"):
        line += f" · due {done.due_on.isoformat()}"
    click.echo(line)


@alerts.command("ack")
@click.argument("alert_id", type=int)
@by_option
@note_option
@pass_app
def alerts_ack(app: App, alert_id: int, by: str, note: str | None) -> None:
    """Acknowledge an open alert: seen, being worked on (this does not resolve it)."""
    from monitor.supervision import acknowledge

    _echo_done(app, acknowledge(app.engine, alert_id, by, app.now(), note, channel="cli"))


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@by_option
@click.option("--disposition", metavar="KIND",
              help="rectified (整改) | explained (说明) | false_positive (误报); required.")
@click.option("--note", help="What was done, or why; required.")
@pass_app
def alerts_resolve(app: App, alert_id: int, by: str, disposition: str | None,
                   note: str | None) -> None:
    """Resolve an alert with a disposition and a note (tier 1 of its department, or tier 2).

    An escalated (tier-2) alert then awaits tier 2's confirm or reject.
    """
    from monitor.supervision import resolve

    _echo_done(app, resolve(app.engine, alert_id, by, app.now(), disposition, note,
                             channel="cli"))


@alerts.command("confirm")
@click.argument("alert_id", type=int)
@by_option
@note_option
@pass_app
def alerts_confirm(app: App, alert_id: int, by: str, note: str | None) -> None:
    """Tier 2: accept the disposition of an escalated alert, which closes it."""
    from monitor.supervision import confirm

    _echo_done(app, confirm(app.engine, alert_id, by, app.now(), note, channel="cli"))


@alerts.command("reject")
@click.argument("alert_id", type=int)
@by_option
@click.option("--note", help="Why the disposition is not accepted; required.")
@pass_app
def alerts_reject(app: App, alert_id: int, by: str, note: str | None) -> None:
    """Tier 2: reject the disposition of an escalated alert; it reopens with a new order."""
    from monitor.supervision import reject

    _echo_done(app, reject(app.engine, _policy(app), alert_id, by, app.now(), note,
                            channel="cli"))


@alerts.command("order")
@click.argument("alert_id", type=int)
@by_option
@note_option
@pass_app
def alerts_order(app: App, alert_id: int, by: str, note: str | None) -> None:
    """Tier 2: issue a supervision order (督办) on any alert not closed, with a new deadline."""
    from monitor.supervision import order

    _echo_done(app, order(app.engine, _policy(app), alert_id, by, app.now(), note,
                           channel="cli"))


@alerts.command("escalate")
@click.argument("alert_id", type=int)
@by_option
@note_option
@pass_app
def alerts_escalate(app: App, alert_id: int, by: str, note: str | None) -> None:
    """Tier 2: take a tier-1 alert to tier 2 now, with a supervision order (督办), before
    its deadline passes (`permit-monitor escalate` does it once it has)."""
    from monitor.supervision import escalate

    _echo_done(app, escalate(app.engine, _policy(app), alert_id, by, app.now(), note,
                             channel="cli"))


@cli.group()
def notify() -> None:
    """The outbox of notifications: deliver what is pending, list what failed."""


@notify.command("flush")
@pass_app
def notify_flush(app: App) -> None:
    """Deliver pending notifications through the sinks in config.yaml (notify:); say how
    many went where, and warn when no sink reaches people (only the log, or files).

    A failing sink is retried later with backoff; nothing is lost. Exit 1 if any message
    could not be delivered this time (it stays queued, or is marked failed with its error).
    """
    from monitor.auditpass import audit_pass

    from monitor.lease import OUTBOX

    with _exclusive(app, name=OUTBOX):  # one flusher at a time, never holding up a run
        result = audit_pass(app.engine, app.config, app.now(), rules=(),
                            stages=("flush",)).delivery
    assert result is not None  # the flush stage ran, or raised
    click.echo(f"sent {result.sent:,} · retrying later {result.retrying:,} · "
               f"failed {result.failed:,}")
    for where, n in sorted(result.by_sink.items()):
        click.echo(f"  {n:,} via {where}")
    if not result.network:
        click.echo("Warning: no network sink (webhook, smtp) is configured: nobody was told "
                   "by SMS or e-mail; add one under notify.sinks and notify.channels in "
                   "config.yaml (permit-monitor settings)", err=True)
    for error in result.errors[:20]:
        click.echo(f"  {error}", err=True)
    if result.retrying or result.failed:
        raise click.exceptions.Exit(1)


@notify.command("list")
@click.option("--failed", is_flag=True, help="Only messages given up on, with their error.")
@click.option("--all", "show_all", is_flag=True, help="Include messages already delivered.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@format_option
@pass_app
def notify_list(app: App, failed: bool, show_all: bool, limit: int | None, fmt: str) -> None:
    """List notifications not yet delivered (pending and failed), oldest first."""
    from monitor.outbox import list_messages

    def text(m) -> str:
        at = m.created_at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
        line = (f"{m.id:>6}  {m.status:<8} {at}  alert {m.alert_id or '-':<5} "
                f"{m.recipient} {m.channel} {m.address or '-'}  {m.text}")
        if m.last_error:
            line += f"\n        attempts {m.attempts} · last error: {m.last_error}"
        return line

    _echo_rows(list_messages(app.engine, status="failed" if failed else None,
                             undelivered=not show_all, limit=limit),
               text, fmt=fmt, empty="no messages")


@notify.command("retry")
@click.argument("ids", nargs=-1, required=True, type=int)
@click.option("--by", "by", required=True, metavar="NAME",
              help="Who asks (an operator or a user id): recorded on the trail.")
@pass_app
def notify_retry(app: App, ids: tuple[int, ...], by: str) -> None:
    """Queue failed messages IDS again (after the address was fixed in the catalog, or a
    sink was repaired): each goes back to pending, with a fresh count of attempts, and
    `notify flush` (or the daemon's flush job) delivers it. Exit 1 if an ID is not a
    failed message.

    \b
    Example:
      permit-monitor notify list --failed
      permit-monitor notify retry 17 18 --by ops && permit-monitor notify flush
    Each message queued again is on the trail with who asked (--by).
    """
    from monitor.outbox import retry

    done = retry(app.engine, list(ids), app.now(), by, channel="cli")
    for message_id in ids:
        click.echo(f"message {message_id}: " + ("queued again" if message_id in done else
                                                 "not a failed message (see notify list)"))
    if len(done) != len(set(ids)):
        raise click.exceptions.Exit(1)


@cli.group()
def holds() -> None:
    """Cases stopped in the workflow (中止流程) by rules with action: halt."""


@holds.command("list")
@click.option("--all", "include_released", is_flag=True, help="Include released holds.")
@click.option("--case", "case_id", help="Only holds on this case.")
@format_option
@pass_app
def holds_list(app: App, include_released: bool, case_id: str | None, fmt: str) -> None:
    """List holds: id, case, alert, rule, since when; whether the workflow system has
    acknowledged it (pending until then), and who released it."""
    from monitor.holds import list_holds

    def text(h) -> str:
        at = h.held_at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
        line = (f"{h.id:>6}  {h.status:<8} {h.department or '-':<6} {h.case_id:<18} "
                f"alert {h.alert_id:<6} {h.rule_id:<18} held {at}")
        if h.status == "held" and h.acked_at is None:
            line += (f" · pending (sent {h.sends}×, not acknowledged)" if h.sends else
                     " · not sent (no workflow channel)")
        elif h.acked_at is not None:
            line += f" · acknowledged {_local(app, h.acked_at)} by {h.acked_by}"
        if h.released_by:
            line += f" · released by {h.released_by}: {h.release_note}"
        return line

    _echo_rows(list_holds(app.engine, include_released=include_released, case_id=case_id),
               text, fmt=fmt, empty="no holds")


@holds.command("release")
@click.argument("hold_id", type=int)
@by_option
@click.option("--note", help="Why the case may go on; required.")
@pass_app
def holds_release(app: App, hold_id: int, by: str, note: str | None) -> None:
    """Release a hold (tier 1 of its department, or tier 2), so the case may go on.

    The same as the alert page's 恢复流程 button and POST /api/v1/holds/ID/release."""
    from monitor.holds import release

    h = release(app.engine, _policy(app), hold_id, by, app.now(), note, channel="cli")
    click.echo(f"hold {h.id}: released · case {h.case_id} · alert {h.alert_id}")


@cli.group()
def audit() -> None:
    """The supervision trail (全留痕): verify its hash chain, show an alert's history."""


@audit.command("verify")
@click.option("--region", "only", multiple=True, metavar="CODE",
              help="Verify this region's chain only (its administrative division code, e.g. "
                   "330102); repeat for several. Default: every region's chain.")
@click.option("--anchor", "anchors", multiple=True, metavar="FILE",
              type=click.Path(exists=True, path_type=Path),
              help="An anchor written by `audit anchor` (or a directory of them); repeat. "
                   "Fails unless the trail still holds each anchored head.")
@pass_app
def audit_verify(app: App, only: tuple[str, ...], anchors: tuple[Path, ...]) -> None:
    """Recompute the trail's hash chains, then replay them against every supervised record.

    There is one chain per region: each is verified on its own and reported by region
    (a single county's store has one, reported as before). Exit 1 naming the first broken
    entry and its region, or every alert, hold, order, disposition, exemption or spot
    check that differs from what the trail says. With --anchor, also check the trail
    against signed checkpoints kept elsewhere: a trail cut short, wiped and reset or
    rolled back to a backup fails (docs/security.md). With --region, the records are not
    replayed (they are checked against every chain at once).
    """
    from monitor.supervised import Replayed, check as check_state
    from monitor.trailcheck import verify_all

    replayed = None if only else Replayed()  # folds the entries in the chains' own pass
    visit = replayed.visit if replayed else None
    if anchors:
        from monitor.anchor import check

        checked = check(app.engine, anchors, visit=visit, only=only)
        results = checked.chains
    else:
        results = verify_all(app.engine, visit, only)
    if len(results) == 1 and not only:
        click.echo(f"trail intact: {results[0].entries:,} entries · head {results[0].head}")
    else:
        from monitor.regionnames import label, names_of

        known = names_of(app.engine, [r.region for r in results])
        for r in results:
            click.echo(f"trail of region {label(r.region, known)} intact: {r.entries:,} "
                       f"entries · head {r.head}")
        if len(results) > 1:
            click.echo(f"trail intact: {len(results)} regions · "
                       f"{sum(r.entries for r in results):,} entries")
    if anchors:
        newest = max(checked.anchors, key=lambda a: a["entries"])
        click.echo(f"anchors hold: {len(checked.anchors)} · newest entry #{newest['entries']:,}"
                   f" at {newest['at']}")
    if replayed is not None:
        state = check_state(app.engine, replayed)
        click.echo(f"records match the trail: {state.rows:,} rows in {state.tables} "
                   "supervised tables")


@audit.command("anchor")
@click.option("--out", type=click.Path(path_type=Path), metavar="FILE",
              help="Write the anchor to FILE (or into a directory). Default: audit.anchor_dir "
                   "and audit.anchor_webhook of config.yaml.")
@click.option("--show-public-key", is_flag=True,
              help="Print the Ed25519 public key of $MONITOR_AUDIT_KEY (for verifiers' "
                   "$MONITOR_AUDIT_PUBLIC_KEY) and exit.")
@pass_app
def audit_anchor(app: App, out: Path | None, show_public_key: bool) -> None:
    """Write a signed checkpoint of the trail (entry count, head hash, hash function, time).

    One anchor holds every region's chain: the store's own at the top, the others under
    "chains".

    Signed with $MONITOR_AUDIT_KEY (audit.signature: hmac or ed25519). Keep anchors
    where the database's owner cannot reach; `audit verify --anchor` checks them.
    """
    from monitor.anchor import anchor, public_key

    if show_public_key:
        click.echo(public_key())
        return
    settings = app.config.audit
    if out is None and not settings.anchors:
        raise click.UsageError("give --out FILE, or set audit.anchor_dir or "
                               "audit.anchor_webhook in config.yaml")
    done = anchor(app.engine, app.now(), settings.signature, out=out,
                  directory=None if out else settings.anchor_dir,
                  webhook=None if out else settings.anchor_webhook)
    a = done.anchor
    click.echo(f"anchored entry #{a['entries']:,} · head {a['head']} · {a['algorithm']} · "
               f"{a['signature_type']} → {', '.join(done.written)}")


@audit.command("show")
@click.argument("alert_id", type=int)
@pass_app
def audit_show(app: App, alert_id: int) -> None:
    """Print an alert's full history from the trail, oldest first."""
    from monitor.alerts import list_alerts
    from monitor.errors import NotFound
    from monitor.trail import history

    if not list(list_alerts(app.engine, alert_id=alert_id)):
        raise NotFound(f"no alert with id {alert_id}")
    for e in history(app.engine, alert_id):
        at = e.at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
        facts = {**e.detail, "channel": e.channel}  # web | api | cli: how a person acted
        facts.pop("state", None)  # the rows' new values: what verify replays
        detail = " ".join(f"{k}={_detail(v)}" for k, v in sorted(facts.items())
                          if v not in (None, "", []))
        click.echo(f"#{e.seq:<6} {at}  {e.action:<13} {e.actor:<12} {detail}")


def _detail(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if " " in text else text


# --------------------------------------------------------- grants: powers given by tier 2


def _os_user() -> str:
    """Who runs a command that names no catalog user: the OS account (for the trail)."""
    import getpass

    try:
        return f"os:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "os:unknown"


@cli.group()
def grants() -> None:
    """Tier-2 roles and monitors' moves a catalog load asked for, until tier 2 decides.

    \b
      permit-monitor grants list
      permit-monitor grants approve 3 --by jw-monitor-1
      permit-monitor grants reject 4 --by jw-monitor-2 --note "未经组织部门批准"
    """


@grants.command("list")
@click.option("--all", "include_all", is_flag=True, help="Decided grants too.")
@pass_app
def grants_list(app: App, include_all: bool) -> None:
    """Grants waiting for approval (--all: every one)."""
    from monitor.grants import list_grants

    def text(g) -> str:
        asked = f"roles {','.join(g.roles) or '-'} · department {g.department or '-'}"
        was = f"was {','.join(g.was.get('roles') or []) or '-'} · {g.was.get('department') or '-'}"
        decided = f" · {g.status} by {g.decided_by}" if g.status != "pending" else ""
        return (f"{g.id:>4}  {g.user_id:<14} {g.kind:<10} {asked} ({was}) · from "
                f"{g.source}{decided}")

    _echo_rows(list_grants(app.engine, include_all), text, empty="no grants pending")


@grants.command("approve")
@click.argument("grant_id", type=int)
@by_option
@note_option
@pass_app
def grants_approve(app: App, grant_id: int, by: str, note: str | None) -> None:
    """Apply a pending grant: a tier-2 monitor, never the user it promotes."""
    from monitor.grants import approve

    g = approve(app.engine, grant_id, by, app.now(), note)
    click.echo(f"grant {g.id}: approved · {g.user_id} now {','.join(g.roles)} in "
               f"{g.department or '-'}")


@grants.command("reject")
@click.argument("grant_id", type=int)
@by_option
@note_option
@pass_app
def grants_reject(app: App, grant_id: int, by: str, note: str | None) -> None:
    """Refuse a pending grant, with a note; the user keeps the powers held before."""
    from monitor.grants import reject

    g = reject(app.engine, grant_id, by, app.now(), note)
    click.echo(f"grant {g.id}: rejected")


# --------------------------------------------------------- supervision: exemptions, spot checks


@cli.group()
def exemptions() -> None:
    """The exemptions registry: approved, scoped, time-limited exceptions to a rule.

    Findings in an exemption's scope are kept as suppressed alerts (alerts list
    --suppressed), never assigned or escalated; adding and revoking are on the trail.
    """


@exemptions.command("add")
@click.option("--rule", "rule_id", required=True, metavar="ID", help="The rule's id.")
@click.option("--scope", "scopes", multiple=True, required=True, metavar="KEY=VALUE",
              help="department=, item=, case=, actor= (comma-separated values) or "
                   "window=FROM/TO; repeatable, all must match.")
@click.option("--reason", required=True, help="Why (recorded in the trail).")
@by_option_was("--approved-by", "The tier-2 monitor (monitor_l2) approving it.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="Last day (local) it applies, inclusive.")
@pass_app
def exemptions_add(app: App, rule_id, scopes, reason, by, until) -> None:
    """Record an exemption of some findings of one rule.

    \b
    Examples:
      permit-monitor exemptions add --rule same-actor-roles --scope department=TS01 \\
          --reason 乡镇便民服务中心仅一名工作人员 --by jw-monitor-1 --until 2026-06-30
      permit-monitor exemptions add --rule late-entry \\
          --scope window=2025-10-09T08:00/2025-10-10T18:00 \\
          --reason 系统停机，事后补录 --by jw-monitor-1 --until 2025-12-31
    """
    from monitor import exemptions as ex
    from monitor.regionrules import ids_seen, load_rule_sets

    scope = ex.parse_scope(scopes, app.config.tz)
    ex_id = ex.add(app.engine, ids_seen(load_rule_sets(app.config)), rule_id, scope, reason,
                   by, until.date(), app.now(), app.config.tz, channel="cli")
    click.echo(f"exemption {ex_id}: {rule_id} {_scope_text(scope, app.config.tz)} "
               f"until {until.date()}")


def _scope_text(scope: dict, tz) -> str:
    """department=SJJ window=2025-11-07T08:00/2025-11-07T18:00 (local time)."""
    def local(t: str) -> str:
        return datetime.fromisoformat(t).astimezone(tz).strftime("%Y-%m-%dT%H:%M")

    return " ".join(f"{k}={'/'.join(map(local, v)) if k == 'window' else ','.join(v)}"
                    for k, v in scope.items())


@exemptions.command("list")
@click.option("--all", "include_all", is_flag=True, help="Include expired and revoked ones.")
@format_option
@pass_app
def exemptions_list(app: App, include_all: bool, fmt: str) -> None:
    """List exemptions in force: id, rule, scope, until, who approved, why."""
    from monitor.exemptions import list_exemptions

    def text(r) -> str:
        state = f" · revoked by {r.revoked_by}: {r.revoke_reason}" if r.revoked_by else ""
        return (f"{r.id:>4}  {r.rule_id:<18} {_scope_text(r.scope, app.config.tz)}  "
                f"until {r.until}  approved by {r.approved_by}: {r.reason}{state}")

    _echo_rows(list_exemptions(app.engine, app.now(), app.config.tz, include_all), text,
               fmt=fmt, empty="no exemptions")


@exemptions.command("revoke")
@click.argument("exemption_id", type=int)
@by_option
@click.option("--reason", help="Why it ends now; required.")
@pass_app
def exemptions_revoke(app: App, exemption_id: int, by: str, reason: str | None) -> None:
    """End an exemption now (a tier-2 monitor, with a reason); it is kept, marked revoked."""
    from monitor.exemptions import revoke

    revoke(app.engine, exemption_id, by, reason, app.now(), channel="cli")
    click.echo(f"exemption {exemption_id}: revoked")


@cli.group()
def ratings() -> None:
    """Citizens' ratings (好差评): list them; appeal a 差评 (申诉) and decide it (复核).

    Ratings are loaded with `permit-monitor ingest ratings`; each 差评 is a finding of the
    bad_rating rule. A department's tier-1 monitor may appeal one; a tier-2 monitor
    upholds it or voids it — a voided rating counts nowhere (report, scores).
    """


@ratings.command("list")
@format_option
@click.option("--department", help="Only this department code.")
@click.option("--bad", is_flag=True, help="Only 差评 (score 1 or 2).")
@click.option("--appeal", type=click.Choice(["pending", "upheld", "voided"]),
              help="Only ratings whose appeal is in this state.")
@pass_app
def ratings_list(app: App, fmt: str, department: str | None, bad: bool,
                 appeal: str | None) -> None:
    """List ratings, newest first: id, score, department, case, tags, appeal."""
    from monitor.filters import check_filters
    from monitor.voice import RATING_FIELDS, list_ratings, record

    check_filters(app.engine, department=department)

    def text(r) -> str:
        rated = r.rated_at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
        state = f"  申诉:{r.appeal}" if r.appeal else ""
        return (f"{r.rating_id:<14} {r.score}  {r.department:<6} {rated}  "
                f"{r.case_id or '-':<14} {'；'.join(r.tags or []) or '-'}{state}")

    _echo_rows(list_ratings(app.engine, department=department, max_score=2 if bad else None,
                            appeal=appeal),
               text, fmt=fmt, record=lambda r: record(r, RATING_FIELDS), columns=RATING_FIELDS,
               empty="no ratings" if fmt == "table" else None)


@ratings.command("appeal")
@click.argument("rating_id")
@by_option
@click.option("--reason", required=True, help="Why the department contests the rating.")
@pass_app
def ratings_appeal(app: App, rating_id: str, by: str, reason: str) -> None:
    """Appeal a 差评 (申诉): a tier-1 monitor of its department, with the reason."""
    from monitor.voice import appeal

    appeal(app.engine, rating_id, by, reason, app.now(), channel="cli")
    click.echo(f"rating {rating_id}: appeal pending (a tier-2 monitor decides it)")


@ratings.command("decide")
@click.argument("rating_id")
@by_option
@click.option("--uphold", "verdict", flag_value="upheld", help="The rating stands (维持).")
@click.option("--void", "verdict", flag_value="voided",
              help="The rating is void (撤销): it counts nowhere.")
@note_option
@pass_app
def ratings_decide(app: App, rating_id: str, by: str, verdict: str | None,
                   note: str | None) -> None:
    """Decide an appeal (复核): a tier-2 monitor, not the one who appealed."""
    from monitor.voice import VERDICTS, decide

    if verdict is None:
        raise click.UsageError("say --uphold or --void")
    closed = decide(app.engine, rating_id, by, verdict, note, app.now(), channel="cli")
    tail = f"; alerts closed as voided: {', '.join(map(str, closed))}" if closed else ""
    click.echo(f"rating {rating_id}: {verdict} ({VERDICTS[verdict]}){tail}")


@cli.group()
def complaints() -> None:
    """Efficiency complaints (效能投诉): list them; record each stage as it is reached.

    Complaints are loaded with `permit-monitor ingest complaints`; each is a finding of the
    complaint rule, handled 受理 → 调查 → 处置 → 反馈 with working-day deadlines.
    """


@complaints.command("list")
@format_option
@click.option("--department", help="Only this department code.")
@click.option("--open", "open_only", is_flag=True, help="Only those not yet answered (反馈).")
@pass_app
def complaints_list(app: App, fmt: str, department: str | None, open_only: bool) -> None:
    """List complaints, newest first: id, department, channel, category, stage reached."""
    from monitor.filters import check_filters
    from monitor.voice import COMPLAINT_FIELDS, list_complaints, record

    check_filters(app.engine, department=department)

    def text(c) -> str:
        got = c.received_at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
        stage = next((name for col, name in (("answered_at", "反馈"), ("handled_at", "处置"),
                                             ("investigated_at", "调查"),
                                             ("accepted_at", "受理"))
                      if getattr(c, col)), "待受理")
        return (f"{c.complaint_id:<14} {c.department:<6} {got}  {c.channel or '-':<6} "
                f"{c.category or '-':<8} {stage:<4} {c.case_id or '-'}")

    _echo_rows(list_complaints(app.engine, department=department, open_only=open_only),
               text, fmt=fmt, record=lambda c: record(c, COMPLAINT_FIELDS),
               columns=COMPLAINT_FIELDS, empty="no complaints" if fmt == "table" else None)


@complaints.command("advance")
@click.argument("complaint_id")
@click.option("--stage", required=True, metavar="STAGE",
              help="accepted (受理) | investigated (调查) | handled (处置) | answered (反馈).")
@by_option
@note_option
@pass_app
def complaints_advance(app: App, complaint_id: str, stage: str, by: str,
                       note: str | None) -> None:
    """Record that a complaint reached a stage (in order: 受理 → 调查 → 处置 → 反馈)."""
    from monitor.voice import advance

    name = advance(app.engine, complaint_id, stage, by, app.now(), note, channel="cli")
    click.echo(f"complaint {complaint_id}: {stage} ({name})")


@cli.group(invoke_without_command=True)
@period_options
@click.option("--n", "size", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many completed cases to draw.")
@click.option("--seed", default="1", show_default=True,
              help="Same period, department, n and seed: the same cases.")
@click.pass_context
def sample(ctx, period, date_from, date_to, department, size, seed) -> None:
    """Spot checks (抽检): draw completed cases for manual review; record the results.

    Draws a reproducible random sample of the cases completed in the period and keeps it;
    the report shows pass rates per department, the scores deduct for failures.

    \b
    Examples:
      permit-monitor sample --period 2026-01 --n 20 --seed 7
      permit-monitor sample --period 2026-01 --department ZRJ --n 5
      permit-monitor sample record ZRJ20260105001 --by jw-monitor-1 --pass --note "材料齐全"
    """
    if ctx.invoked_subcommand:
        return
    from monitor.spotcheck import draw

    app = ctx.find_object(App)
    when = _period(app, period, date_from, date_to, department)
    drawn = draw(app.engine, when, app.config.tz, size, seed, app.now(), department)
    for d in drawn:
        at = d.completed_at.astimezone(app.config.tz).strftime("%Y-%m-%d")
        click.echo(f"{d.case_id:<20} {d.department or '-':<6} {d.item_code or '-':<14} "
                   f"completed {at}" + ("" if d.new else "  (drawn before)"))
    click.echo(f"{len(drawn)} cases drawn from {when.label} (seed {seed}); record each with: "
               "permit-monitor sample record CASE --by USER --pass|--fail --note …", err=True)


@sample.command("record")
@click.argument("case_id")
@by_option
@click.option("--pass/--fail", "passed", required=True, help="The review's result.")
@click.option("--note", help="What was checked; for a failure, what was wrong. Required.")
@click.option("--reason", help="Why a case already recorded is recorded again (an amendment; "
                               "the first result stays on the trail).")
@pass_app
def sample_record(app: App, case_id: str, by: str, passed: bool, note: str | None,
                  reason: str | None) -> None:
    """Record the result of reviewing a drawn case: a monitor of its department or tier 2.

    A second record of the same case is an amendment: it needs --reason, and the trail
    keeps the first result and says what changed.
    """
    from monitor.spotcheck import record

    row = record(app.engine, case_id, by, passed, note, app.now(), reason)
    click.echo(f"spot check {row.case_id}: {row.result} by {row.by_user}")


# ---------------------------------------------------------------- rules: tools for rule authors


@cli.group()
def rules() -> None:
    """Tools for rule authors: check files, run golden tests, explain a finding, backtest a
    change against history, calibrate thresholds from history.

    \b
    A threshold change, end to end:
      permit-monitor rules check rules/              validate (also a pre-commit hook)
      permit-monitor rules test tests/rules/*.yaml   golden tests: expected alerts
      permit-monitor rules backtest --from 2025-08-01 --to 2026-02-01 --candidate new-rules/
      permit-monitor rules explain overdue --case ZJJ20260114005
    """


def _shown(path) -> str:
    """A path relative to the working directory when it is below it."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@rules.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--catalog", type=click.Path(dir_okay=False),
              help="Also check scope departments and item codes against this catalog YAML.")
@click.option("-q", "--quiet", is_flag=True, help="Print problems only, not OK lines.")
@pass_app
def rules_check(app: App, paths: tuple[str, ...], catalog: str | None, quiet: bool) -> None:
    """Validate rule files (default: rules_dir); exit 1 on any problem.

    Prints `OK path` for each good file and `path:line: message (did you mean …)` for each
    problem. With no PATHS, each county's folder of overrides (rules_dir/regions/CODE/)
    is checked as a run reads it too. Checks every key and value as `run` would load it, plus step names, roles,
    scope categories, departments and items: against --catalog, else against the catalog in
    the configured database (read only, never created); says on stderr which, or why not.

    \b
    Examples:
      permit-monitor rules check
      permit-monitor rules check rules/overdue.yaml --catalog catalog.yaml
    \b
    As a git pre-commit hook (.git/hooks/pre-commit):
      git diff --cached --name-only -- 'rules/*.yaml' | xargs -r permit-monitor rules check -q
    """
    from monitor.ruletools.check import FileReport, check_paths, store_vocabulary, vocabulary

    if catalog:
        vocab = vocabulary(catalog, app.config.limits)
    else:
        vocab, checked = store_vocabulary(app.url)
        if not quiet or not vocab.departments:
            click.echo(checked, err=True)
    reports = check_paths(list(paths) or [_shown(app.config.rules_dir)], vocab,
                          app.config.limits)
    if not paths:  # rules_dir: the counties' overrides too (docs/regions.md)
        from monitor.regionrules import check_overrides

        base = [r for report in reports for r in report.rules]
        reports += [FileReport(_shown(folder), problems=list(problems))
                    for folder, problems in check_overrides(app.config, base)]
    bad = 0
    for report in reports:
        for problem in report.problems:
            click.echo(str(problem))
        bad += len(report.problems)
        if not report.problems and not quiet:
            click.echo(f"OK {report.path}")
    if bad:
        raise click.exceptions.Exit(1)


@rules.command("list")
@click.option("--region", callback=_region, metavar="CODE",
              help="The county whose rule set to show (GB/T 2260 code) [default: "
                   "config.yaml's region].")
@pass_app
def rules_list(app: App, region: str | None) -> None:
    """List the rules in force in a county: id, kind, level, on/off, and where each comes
    from — the base (rules_dir) or the county's own overrides (regions/CODE/, see
    docs/regions.md).

    \b
    Examples:
      permit-monitor rules list
      permit-monitor rules list --region 330106
    """
    from monitor.regionrules import in_force

    for r in in_force(app.config, region):
        state = "off" if r.rule is None or not r.rule.enabled else "on"
        what = "-  -" if r.rule is None else f"{r.rule.kind}  {r.rule.level}"
        click.echo(f"{r.id}  {what}  {state}  {r.source}  {_shown(r.path)}:{r.line}")


@rules.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@pass_app
def rules_test(app: App, files: tuple[str, ...]) -> None:
    """Run golden test FILES: events in, expected alerts out; exit 1 on any failure.

    Each test runs in its own scratch SQLite database (the live one is never touched):
    its catalog and events are ingested, its rules run at each moment, and the alerts
    stored by then are compared with the expected ones (kind, subject, level); a failure
    prints expected (-) against got (+). rule_files in the file name the rules under
    test (unset: rules_dir). The format is in README, "For rule admins".

    \b
    Example:
      permit-monitor rules test tests/rules/test_step_too_fast.yaml
    \b
      tests:
        - name: the seed's 58-second survey
          cases:
            HC-1:
              item: D04-XK-001
              events: [{accept: 2025-09-30 10:00}, {survey: +58s}]
          at: 2025-10-01 18:00
          expect: [{kind: step_too_fast, subject: HC-1, level: yellow}]
    """
    from monitor.db import scratch_database
    from monitor.ruletools.golden import run_file

    passed = failed = 0
    for path in files:
        for result in run_file(path, scratch_database, app.config.rules_dir):
            if result.ok:
                passed += 1
                click.echo(f"PASS {path}: {result.test.name}")
            else:
                failed += 1
                click.echo(f"FAIL {result.report()}")
    click.echo(f"{passed} passed, {failed} failed")
    if failed:
        raise click.exceptions.Exit(1)


@rules.command("explain")
@click.argument("rule_id", metavar="RULE")
@click.option("--case", "case_id", required=True, help="The case to explain.")
@click.option("--as-of", "as_of", metavar="ISO8601",
              help="Explain as of this moment (default: now, or the demo's own moment). "
                   "Naive = configured timezone.")
@pass_app
def rules_explain(app: App, rule_id: str, case_id: str, as_of: str | None) -> None:
    """Show how RULE judges one case: timeline, each gap against its threshold, working
    days one by one (holidays, 调休 make-up days, suspensions), deadlines, each step
    against its catalog step_days (overdue), verdict. In a store of several counties the
    case's county's rule and calendar judge it (the header names a county's own rule).

    The verdict is the engine's own (the rule's detector, run dry as of the same moment);
    nothing is written.

    \b
    Examples:
      permit-monitor rules explain overdue --case ZJJ20260114005 --as-of 2026-02-01
      permit-monitor rules explain step-too-fast --case HC-58S
    """
    from monitor.regionrules import load_rule_sets
    from monitor.ruletools.explain import explain

    moment = _audit_as_of(app, as_of)
    out = explain(app.engine, app.config, load_rule_sets(app.config), rule_id, case_id, moment)
    own = (f" · region {out.region}'s own rule ({_shown(out.rule.path)}:{out.rule.line})"
           if out.source != "base" else "")
    click.echo(f"{out.rule.id} ({out.rule.kind}, {out.rule.status}) · case {case_id} · as of "
               f"{moment.astimezone(app.config.tz).isoformat()}{own}")
    click.echo("timeline:")
    for line in out.timeline:
        click.echo(f"  {line}")
    if out.checks:
        click.echo("checks:")
        for line in out.checks:
            click.echo(f"  {line}")
    if out.days:
        click.echo("working days:")
        for line in out.days:
            click.echo(f"  {line}")
    click.echo(f"verdict: {out.verdict}")
    if out.evidence:
        click.echo("evidence: " + json.dumps(out.evidence, ensure_ascii=False, default=str))
    if out.alert:
        click.echo(f"stored: {out.alert}")


@rules.command("backtest")
@click.option("--from", "start", required=True, metavar="DATE", help="Window start (ISO 8601).")
@click.option("--to", "end", required=True, metavar="DATE",
              help="Window end (ISO 8601); both rule sets are evaluated as of this moment.")
@click.option("--candidate", type=click.Path(file_okay=False, exists=True),
              help="Directory of candidate rule files (default: only the current rules).")
@click.option("--show", default=5, show_default=True, type=click.IntRange(min=0),
              help="List up to this many subjects per rule that appear, disappear or change.")
@pass_app
def rules_backtest(app: App, start: str, end: str, candidate: str | None, show: int) -> None:
    """Replay history with the current rules and a candidate rule directory; report per
    rule and department which findings would appear, disappear or change level.

    Both are evaluated through the engine's dry run: live alerts, watermarks and the trail
    are never touched. A finding is in the window when one of its events happened in it.
    Each county is judged by its own rules and calendar: the candidate's regions/CODE/
    folders are its counties' overrides (without a regions/ folder, the current ones).

    \b
    Example (a stricter survey minimum, tried before it ships):
      mkdir candidate && cp rules/*.yaml candidate/ && $EDITOR candidate/step_too_fast.yaml
      permit-monitor rules backtest --from 2025-08-01 --to 2026-02-01 --candidate candidate/
    """
    from pathlib import Path

    from monitor.regionrules import candidate_sets, load_rule_sets
    from monitor.ruletools.backtest import backtest

    current = load_rule_sets(app.config)
    other = candidate_sets(app.config, Path(candidate)) if candidate else current
    result = backtest(app.engine, app.config, current, other, _as_of(app, start),
                      _as_of(app, end))
    tz = app.config.tz
    click.echo(f"backtest {result.start.astimezone(tz):%Y-%m-%d %H:%M} … "
               f"{result.end.astimezone(tz):%Y-%m-%d %H:%M}: current "
               f"{_shown(app.config.rules_dir)} vs candidate {candidate or '(same)'} "
               "(dry run: nothing written)")
    click.echo(f"  {'rule':<22} {'department':<10} {'current':>8} {'candidate':>9} "
               f"{'appear':>7} {'disappear':>9} {'level':>6}")
    for (rule_id, dept), c in sorted(result.by_rule_department.items()):
        if not (c.appear or c.disappear or c.changed):
            continue  # unchanged: in the per-rule totals below
        click.echo(f"  {rule_id:<22} {dept:<10} {c.current:>8,} {c.candidate:>9,} "
                   f"{len(c.appear):>+7,} {-len(c.disappear):>9,} {len(c.changed):>6,}")
    click.echo("per rule (departments without churn are not listed above):")
    for rule_id, c in result.totals().items():
        click.echo(f"  {rule_id:<22} current {c.current:,} → candidate {c.candidate:,}: "
                   f"appear {len(c.appear):,} · disappear {len(c.disappear):,} · "
                   f"level changed {len(c.changed):,}")
        for label, found in (("appear", c.appear), ("disappear", c.disappear)):
            if found and show:
                click.echo(f"    {label}: " + ", ".join(f"{f.subject} ({f.level})"
                                                       for f in found[:show])
                           + (" …" if len(found) > show else ""))
        if c.changed and show:
            click.echo("    level: " + ", ".join(f"{a.subject} {a.level}→{b.level}"
                                                 for a, b in c.changed[:show])
                       + (" …" if len(c.changed) > show else ""))
    for flood in result.floods:
        click.echo(f"warning: candidate {flood.message(app.config.flood_percent / 100)}", err=True)


@rules.command("calibrate")
@click.option("--kind", required=True,
              type=click.Choice(["step_too_fast", "case_too_fast", "late_entry", "batch_entry",
                                 "overdue"]),
              help="The rule kind to calibrate: step_too_fast (per item and step), "
                   "case_too_fast (per item, acceptance to decision), late_entry (max_hours), "
                   "batch_entry (min_events in the rule's window) or overdue (warning_days).")
@click.option("--rule", "rule_id", metavar="ID",
              help="Which rule of that kind (default: the only one in rules_dir).")
@click.option("--item", "items", multiple=True, metavar="CODE", help="Only this item (repeatable).")
@click.option("--step", "steps", multiple=True,
              help="Only this step (repeatable; default: every step with a minimum).")
@click.option("--k", default=3.0, show_default=True, type=click.FloatRange(min=0),
              help="Proposal = exp(median − k·MAD) of the log-gaps.")
@click.option("--quantile", default=0.01, show_default=True, type=click.FloatRange(0, 1),
              help="Low quantile of the gaps shown for comparison.")
@click.option("--min-n", default=30, show_default=True, type=click.IntRange(min=2),
              help="Skip items and steps with fewer gaps than this (late_entry, batch_entry, "
                   "overdue: refuse with fewer cases or entries).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Write a candidate rule directory here (for rules backtest --candidate).")
@click.option("--region", callback=_region, metavar="CODE",
              help="Calibrate this county's rule in force on its own history (its days in "
                   "its calendar); --out writes it as the county's override.")
@pass_app
def rules_calibrate(app: App, kind, rule_id, items, steps, k, quantile, min_n, out,
                    region) -> None:
    """Propose thresholds from history with robust statistics.

    step_too_fast, case_too_fast — for each item (and step): the number of gaps, their
    median, the MAD of their logarithms, mean − 2·sd (to show why it fails on skewed
    durations), and the findings the current threshold, the median/MAD proposal and the
    low quantile would each raise. late_entry, batch_entry, overdue — one county-wide
    threshold the same way: a case's longest keying delay, the entries in each entry's
    window, the working days left when a case was decided (the high tail, or for
    warnings the cases decided closest to their deadline; the quantile is 1 − Q there).

    \b
    Example:
      permit-monitor rules calibrate --kind step_too_fast --item WABO-RECEIPT --out candidate/
      permit-monitor rules backtest --from 2010-10-01 --to 2012-02-01 --candidate candidate/
    """
    from pathlib import Path

    from monitor.regionrules import calibrated_rules
    from monitor.ruletools.calibrate import calibrate, write_candidate

    chosen = [r for r in calibrated_rules(app.config, region)
              if r.kind == kind and (rule_id is None or r.id == rule_id)]
    if len(chosen) != 1:
        from monitor.errors import usage

        raise usage(MonitorError(f"{len(chosen)} rules of kind {kind} match: name one with "
                                 "--rule"))
    rule = chosen[0]
    if kind in ("late_entry", "batch_entry", "overdue"):
        return _calibrate_limit(app, rule, items, k, quantile, min_n, out, region)
    found = calibrate(app.engine, rule, items=items, steps=steps, k=k, q=quantile,
                      min_n=min_n, region=region)
    click.echo(f"{rule.id}: proposals from history (" + (
        "span = acceptance to the first decision, else completion)" if kind == "case_too_fast"
        else "gap = time since the case's previous step)"))
    click.echo(f"  {'item':<16} {'step':<10} {'gaps':>6} {'median':>9} {'MAD(log)':>8} "
               f"{'mean-2sd':>9}  {'current':>14}  {'median/MAD':>16}  {f'q{quantile:g}':>16}")
    for p in found:
        cur = f"{p.current_min:g} min→{p.current_findings:,}" if p.current_min is not None \
            else "none"
        click.echo(f"  {p.item:<16} {p.step:<10} {p.n:>6,} {p.median_s:>8.0f}s {p.mad_log:>8.2f} "
                   f"{p.mean_minus_2sd_s:>8.0f}s  {cur:>14}  "
                   f"{f'{p.proposed_min:g} min→{p.proposed_findings:,}':>16}  "
                   f"{f'{p.quantile_min:g} min→{p.quantile_findings:,}':>16}")
    if out:
        note = (f"candidate written by `permit-monitor rules calibrate --kind {kind}` "
                f"(median/MAD, k={k:g}); try it with rules backtest --candidate")
        path = write_candidate(Path(app.config.rules_dir), rule, found, Path(out), note,
                               region)
        param = "item_min_case_minutes" if kind == "case_too_fast" else "item_min_minutes"
        click.echo(f"candidate rules written to {out}/ ({path.name}: {param})")


def _calibrate_limit(app: App, rule, items, k: float, quantile: float, min_n: int,
                     out: str | None, region: str | None) -> None:
    from pathlib import Path

    from monitor.ruletools.calibrate import write_params
    from monitor.ruletools.limits import MEASURES, calibrate_limit

    p = calibrate_limit(app.engine, app.config, rule, app.now(), items=items, k=k, q=quantile,
                        min_n=min_n, region=region)
    click.echo(f"{rule.id}: {p.param} from history ({MEASURES[rule.kind]})")
    q = quantile if rule.kind == "overdue" else 1 - quantile  # the tail the kind flags
    click.echo(f"  {'n':>8} {'median':>10} {'MAD':>6}  {'current':>20}  {'median/MAD':>20}  "
               f"{f'q{q:g}':>20}")

    def cell(value: float, findings: int) -> str:
        return f"{value:g} {p.unit}→{findings:,}"

    click.echo(f"  {p.n:>8,} {p.median:>9.3g}{'' if p.unit == 'entries' else p.unit[0]} "
               f"{p.mad:>6.2f}  {cell(p.current, p.current_findings):>20}  "
               f"{cell(p.proposed, p.proposed_findings):>20}  "
               f"{cell(p.quantile, p.quantile_findings):>20}")
    if out:
        value: float | int = int(p.proposed) if p.unit != "h" else p.proposed
        note = (f"candidate written by `permit-monitor rules calibrate --kind {rule.kind}` "
                f"(median/MAD, k={k:g}); try it with rules backtest --candidate")
        path = write_params(Path(app.config.rules_dir), rule, Path(out), note,
                            {p.param: value}, region)
        click.echo(f"candidate rules written to {out}/ ({path.name}: {p.param} {value})")


# -------------------------------------------------------------------------------------- reports


def _warn_if_no_events(app: App) -> None:
    """An all-zero report from an empty store looks like a quiet month: say which store."""
    from sqlalchemy import select

    from monitor.db import safe_url
    from monitor.models import Event

    with app.engine.connect() as conn:
        if conn.scalar(select(Event.id).limit(1)) is None:
            click.echo(f"warning: the database {safe_url(app.url)} holds no events: is it the "
                       "one you meant? (--db URL or MONITOR_DATABASE_URL; the demo's is "
                       "sqlite:///permit-monitor-demo/monitor.db)", err=True)


def _emit_report(text, written) -> None:
    if text is not None:
        click.echo(text, nl=False)
    for path in written:
        click.echo(f"written: {path}", err=True)


REPORT_FORMATS = click.Choice(["text", "html", "xlsx", "csv", "json"])
report_region_option = click.option(
    "--region", callback=_region, metavar="CODE",
    help="Only this region: a county's code (GB/T 2260), or a city's or province's, which "
         "covers its counties and adds a table (report) or ranking (scores) of them "
         "[default: every region in the store, each department as REGION:CODE where "
         "counties share its code].")


@cli.command()
@period_options
@click.option("--format", "fmt", type=REPORT_FORMATS, default="text", show_default=True)
@click.option("--out", metavar="FILE",
              help="Write to FILE (needed for html and xlsx); for csv a folder, one file "
                   "per table.")
@click.option("--table", metavar="NAME",
              help="csv to stdout: which table (cases, findings, supervision, by_kind, items, "
                   "actors, red, online, online_daily, spot; regions with a city's or "
                   "province's --region) [default: findings].")
@report_region_option
@pass_app
def report(app: App, period, date_from, date_to, department, fmt, out, table, region) -> None:
    """The audit report (通报) of a period: per department, with the county's totals.

    Cases accepted and completed, on-time rate, working days to complete; findings by
    kind and level with 环比 (vs the previous period) and 同比 (vs a year earlier);
    open and escalated alerts, reminders, supervision orders (督办), dispositions and
    median time to resolve; the items and actors with most findings; every red finding
    with its evidence; online rates from the monitoring log; spot-check pass rates.
    Labels in Chinese; `language: en` in config.yaml for English.

    \b
    Examples:
      permit-monitor report --period 2026-01
      permit-monitor report --period 2026-Q1 --format html --out 2026Q1.html
      permit-monitor report --period 2026-01 --format xlsx --out 2026-01.xlsx
      permit-monitor report --from 2026-01-01 --to 2026-01-15 --department ZRJ
      permit-monitor report --period 2026-01 --format csv --out report-2026-01/
      permit-monitor report --period 2026-01 --format json > 2026-01.json
      permit-monitor report --period 2026-01 --region 330100
    """
    from monitor.report import build_report
    from monitor.report.render import render
    from monitor.rulenames import titles

    _warn_if_no_events(app)
    when = _period(app, period, date_from, date_to, department)
    rep = build_report(app.engine, app.config, when, app.now(), department, titles(app.config),
                       region=region)
    key = f"t_{table}" if table else None
    _emit_report(*render(rep, fmt, out, key))


@cli.command()
@period_options
@click.option("--format", "fmt", type=REPORT_FORMATS, default="text", show_default=True)
@click.option("--out", metavar="FILE", help="Write to FILE (needed for html and xlsx).")
@click.option("--explain", metavar="CODE",
              help="List every deduction of this department, with the alert behind it.")
@report_region_option
@pass_app
def scores(app: App, period, date_from, date_to, department, fmt, out, explain, region
           ) -> None:
    """Department scorecards (绩效考评): 100 minus deductions, sub-scores, ranking.

    Each theme (regular handling, timeliness, fees, supervision response) starts with its
    points and loses some per finding by level, per finding still open or escalated, and
    per failed spot check; weights under `scores:` in config.yaml (`permit-monitor
    settings`). Every deduction names its alert: --explain CODE.

    \b
    Examples:
      permit-monitor scores --period 2026-01
      permit-monitor scores --period 2026-Q1 --format xlsx --out scores-2026Q1.xlsx
      permit-monitor scores --period 2026-01 --explain ZRJ
      permit-monitor scores --period 2026-01 --region 330100
    """
    from monitor.report.render import render
    from monitor.scores import deductions, scorecard

    _warn_if_no_events(app)
    when = _period(app, period, date_from, date_to, department)
    if explain:
        found = [x for x in deductions(app.engine, app.config, when, explain, region)]
        for x in found:
            ref = f"alert {x.alert_id}" if x.alert_id else f"spot check {x.case_id}"
            click.echo(f"-{x.points:<5g} {x.theme:<11} {x.reason:<18} {ref:<14} {x.message}")
        click.echo(f"{explain}: {len(found):,} deductions, {sum(x.points for x in found):g} "
                   f"points (see: permit-monitor alerts show ID)")
        return
    from monitor.rulenames import titles

    card = scorecard(app.engine, app.config, when, app.now(), department, titles(app.config),
                     region=region)
    _emit_report(*render(card, fmt, out, "t_scores"))


# ---------------------------------------------------------- administration: set-up and the demo


@cli.command()
@pass_app
def init(app: App) -> None:
    """Create or upgrade the database schema (done automatically on first use too)."""
    from monitor.db import safe_url

    app.engine
    click.echo(f"database ready: {safe_url(app.url)}")


@cli.command()
def settings() -> None:
    """List every config.yaml setting with its default and meaning."""
    for s in SETTINGS:
        click.echo(f"{s.name}  (default: {s.default!r})\n    {s.help}")
    from monitor.config import (AUDIT_SETTINGS, GATE_SETTINGS, INBOX_SETTINGS, LIMIT_SETTINGS,
                                REGION_SETTINGS, SCHEDULE_SETTINGS, SCORE_SETTINGS,
                                WEB_SETTINGS)

    for title, table in (("mapping: (XES import)", MAPPING_SETTINGS),
                         ("notify: (delivery of notifications)", NOTIFY_SETTINGS),
                         ("scores: (scorecard weights, 绩效考评)", SCORE_SETTINGS),
                         ("inbox: (the drop directory)", INBOX_SETTINGS),
                         ("schedule: (the serve daemon)", SCHEDULE_SETTINGS),
                         ("web: (permit-monitor web, the control center)", WEB_SETTINGS),
                         ("gate: (the workflow gate, POST /api/v1/gate)", GATE_SETTINGS),
                         ("limits: (hostile or broken input)", LIMIT_SETTINGS),
                         ("audit: (integrity: the trail's hash, anchors)", AUDIT_SETTINGS),
                         ("regions: CODE: (one county's own, docs/regions.md)",
                          REGION_SETTINGS)):
        click.echo(f"\n{title}")
        for s in table:
            click.echo(f"  {s.name}  (default: {s.default!r})\n      {s.help}")


@cli.command()
@click.option("--dir", "directory", default="permit-monitor-demo", show_default=True,
              type=click.Path(file_okay=False), help="Where the demo's files and database go.")
@click.option("--seed", default=2025, show_default=True, help="Same seed, same county.")
@click.option("--cases", default=5000, show_default=True, type=click.IntRange(min=100),
              help="How many permit cases to generate.")
@click.option("--replay", is_flag=True,
              help="Instead of auditing once at the end, replay the half-year day by day: "
                   "rules and escalation every working day at 18:00, the monitors of both "
                   "tiers simulated from the seed; then a summary per month.")
def demo(directory: str, seed: int, cases: int, replay: bool) -> None:
    """Build a realistic sample county and load it into a fresh SQLite database.

    Writes catalog.yaml, events.csv and receipts.csv (the input contract) to --dir, with
    anomalies planted at low rates (back-filled steps, one-person approvals, overdue
    cases, offline fees, unauthorised waivers) and look-alike cases no rule may flag
    (a case straddling National Day, suspended and extended cases, authorised waivers);
    planted.json lists their case ids. Then ingests everything.

    With --replay, the six months are then replayed as they happened: each working day the
    rules run as of 18:00 (later events not yet visible) and escalation after them; tier-1
    monitors acknowledge and resolve (some miss their deadline), tier 2 confirms or rejects.
    The trail is verified at the end.
    """
    if replay:
        return _demo_replay(directory, seed, cases)
    from monitor.demo import run_demo

    result = run_demo(directory, seed=seed, cases=cases, now=App.now())
    _echo_loaded(result, seed, result.planted, result.controls)
    _echo_audit(result.audit, result.as_of)
    _echo_checks(result.checks)
    click.echo(f"database: {result.database_url}")
    click.echo(f"next: permit-monitor --db {result.database_url} alerts list --level red")
    _echo_demo_web(result.database_url)
    _echo_demo_report(result.database_url, result.directory)


def _echo_loaded(result, seed: int, planted, controls) -> None:
    click.echo(f"demo county written to {result.directory}/ (seed {seed})")
    for name, path in result.files.items():
        click.echo(f"  {name:<10} {path}")
    click.echo("catalog: " + ", ".join(f"{result.catalog.added[n]:,} {n}"
                                       for n in ("departments", "users", "items")))
    for r in result.events + result.receipts:
        _echo_tally(r.source, r.tally)
    click.echo("planted anomalies (case ids in planted.json):")
    for kind, n in planted.items():
        click.echo(f"  {kind:<22} {n:>4}")
    click.echo("look-alikes that must not be flagged: "
               + ", ".join(f"{k} {v}" for k, v in controls.items()))


def _day_bar(days: int):
    """A progress bar over the replayed days on an interactive terminal; else nothing."""
    if not sys.stderr.isatty():
        return None
    # its items are the days (dates); click types a bar made from a length as over ints
    bar: Any = click.progressbar(length=days, label="replaying", file=sys.stderr,
                                 item_show_func=lambda d: d.isoformat() if d else None)
    bar.__enter__()
    done = [0]

    def tick(day) -> None:
        bar.update(1, current_item=day)
        done[0] += 1
        if done[0] >= days:
            bar.__exit__(None, None, None)

    return tick


REPLAY_ROWS = (  # (label, how to read it off a replay.Month)
    ("raised", lambda m: m.actions["raised"]),
    ("acknowledged", lambda m: m.actions["acknowledged"]),
    ("resolved: rectified 整改", lambda m: m.dispositions["rectified"]),
    ("          explained 说明", lambda m: m.dispositions["explained"]),
    ("          false_positive 误报", lambda m: m.dispositions["false_positive"]),
    ("escalated to tier 2", lambda m: m.actions["escalated"]),
    ("supervision orders 督办", lambda m: m.actions["order_issued"]),
    ("reminders", lambda m: m.actions["reminded"]),
    ("confirmed by tier 2", lambda m: m.actions["confirmed"]),
    ("rejected by tier 2 (reopened)", lambda m: m.actions["rejected"]),
    ("holds placed", lambda m: m.actions["held"]),
    ("holds released", lambda m: m.actions["released"]),
    ("still open now (by month raised)", lambda m: m.still_open),
    ("awaiting tier-2 review now", lambda m: m.awaiting_review),
    ("notifications queued", lambda m: m.messages),
)


def _demo_replay(directory: str, seed: int, cases: int) -> None:
    from monitor.demo.replay import replay_demo

    out = replay_demo(directory, seed=seed, cases=cases, now=App.now(), progress=_day_bar)
    _echo_loaded(out.loaded, seed, out.planted, out.controls)
    r, tz = out.replay, out.loaded.config.tz
    click.echo(f"replayed {r.days} working days, {r.first.astimezone(tz):%Y-%m-%d} … "
               f"{r.last.astimezone(tz):%Y-%m-%d}: rules, then escalation, at "
               f"{r.first.astimezone(tz):%H:%M} each; monitors simulated from the seed")
    click.echo(f"  {'':<33}" + "".join(f"{m.month:>8}" for m in r.months) + f"{'total':>8}")
    for label, value in REPLAY_ROWS:
        figures = [value(m) for m in r.months]
        pad = 33 - sum(2 if ord(c) > 0x2E7F else 1 for c in label)  # CJK: two columns
        click.echo(f"  {label}{' ' * pad}" + "".join(f"{n:>8,}" for n in figures)
                   + f"{sum(figures):>8,}")
    click.echo(f"notifications: {r.messages:,} queued in the outbox "
               "(permit-monitor notify flush delivers them)")
    click.echo(f"audit verify: trail intact: {r.verified.entries:,} entries · "
               f"head {r.verified.head}")
    url = out.loaded.database_url
    click.echo(f"database: {url}")
    if r.example:
        click.echo(f"next: permit-monitor --db {url} audit show {r.example}   "
                   "(an alert through both tiers)")
    _echo_demo_web(url)
    _echo_demo_report(url, out.loaded.directory)


def _echo_audit(outcomes, as_of: datetime) -> None:
    """Alerts by rule and level, and the departments with most findings."""
    from collections import Counter

    from monitor.alerts import render

    click.echo(f"audit as of {as_of.isoformat()} (the end of the log):")
    departments: Counter = Counter()
    for o in outcomes:
        if o.error:
            click.echo(f"  {o.rule.title}  FAILED: {o.error}")
            continue
        levels = Counter(render(o.rule, f)[0] for f in o.findings)
        departments.update(f.department for f in o.findings if f.department)
        by_level = ", ".join(f"{k} {v}" for k, v in sorted(levels.items())) or "none"
        click.echo(f"  {o.rule.id:<22} {len(o.findings):>5}  ({by_level})  {o.rule.title}")
    worst = ", ".join(f"{d} {n}" for d, n in departments.most_common(5))
    click.echo(f"departments with most findings: {worst or 'none'}")


def _echo_checks(checks) -> None:
    """The audit against planted.json: one line if it is exact, else what differs."""
    expected = sum(len(c.expected) for c in checks)
    wrong = [c for c in checks if c.missed or c.unexpected]
    if not wrong:
        click.echo(f"checked against planted.json: all {expected} planted subjects found "
                   "by their rules, nothing else flagged")
        return
    click.echo("checked against planted.json: the audit differs from the ground truth")
    for c in wrong:
        click.echo(f"  {c.kind:<22} missed {len(c.missed)}: {', '.join(sorted(c.missed)[:5])}"
                   f"  unexpected {len(c.unexpected)}: {', '.join(sorted(c.unexpected)[:5])}")


def _echo_demo_web(url: str) -> None:
    """The control center on the demo county, and the logins the demo set up for it."""
    from monitor.demo import AS_OF
    from monitor.demo.logins import WEB_AS_OF, demo_logins

    # as of the demo's moment, not now: the same seed gives the same trail, to the hash
    logins, password = demo_logins(url, AS_OF)
    click.echo(f"web: permit-monitor --db {url} web --as-of {WEB_AS_OF}   "
               "then open http://127.0.0.1:8000/")
    click.echo("  log in as " + " or ".join(f"{u} ({role})" for u, role in logins)
               + f", password {password}")


def _echo_demo_report(url: str, directory) -> None:
    """The demo ends with the monthly report of the log's last month: HTML and XLSX in the
    demo's folder, a few lines on screen."""
    from monitor.demo.report import demo_report

    out = demo_report(url, directory, App.now())
    click.echo(f"monthly report (通报) {out.period}: " + " · ".join(out.summary))
    for line in out.worst:
        click.echo(f"  {line}")
    click.echo(f"  html: {out.html}")
    click.echo(f"  xlsx: {out.xlsx}")
    click.echo(f"  ranking: permit-monitor --db {url} scores --period {out.period}")


# -------------------------------------------------- administration: nightly, serve, run records


def _json_logs() -> None:
    from monitor.logs import json_lines

    json_lines()


def _runner(app: App, trigger: str):
    from monitor.jobs import Runner

    return Runner(app.engine, app.config, clock=app.now, wall=time.time, trigger=trigger)


@cli.command()
@click.option("--as-of", "as_of", metavar="ISO8601",
              help="Evaluate as of this moment (default: now). Naive = configured timezone.")
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 3 when the pass raised new red alerts (so cron can page).")
@click.option("--log-json", is_flag=True, help="Logs on stderr as JSON lines.")
@click.option("--wait", "wait", type=click.IntRange(min=0), metavar="SECONDS",
              help="Wait this long for another run to finish [default: lease_wait_seconds].")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run record as one JSON object instead of the paragraph.")
@pass_app
def nightly(app: App, as_of: str | None, exit_code: bool, log_json: bool, wait: int | None,
            as_json: bool) -> None:
    """One unattended pass, for cron: inbox, pull, rules, escalation, report, delivery.

    Ingests what waits in the inbox (and the source databases of `sources:`), evaluates
    the rules incrementally — after downtime first as of each nightly slot missed since
    the last successful run (schedule.jobs.nightly, at most catch_up_max_slots), so
    nothing is missed and nothing raised twice — escalates once, builds the day's report
    and delivers notifications. Holds the database lock while it runs: a second pass, the daemon or a
    hand-started `run` waits (lease_wait_seconds) or exits with an error.

    \b
    Exit codes: 0 ok · 1 error (a step failed; the run is recorded as failed and an
    operational alert raised) · 2 usage · 3 with --exit-code: new red alerts.
    Logs go to stderr (-v for each step; --log-json for JSON lines), a one-paragraph
    summary to stdout.

    \b
    Example crontab (02:00 every night; cron mails the summary, exit 3 = red). Cron's
    environment is bare: name the database there, or the pass uses SQLite monitor.db:
      MONITOR_DATABASE_URL=postgresql+psycopg://monitor@localhost/permit_monitor
      0 2 * * *  cd /srv/monitor && .venv/bin/permit-monitor nightly --exit-code 2>>nightly.log
    Try it by hand first:  permit-monitor nightly
    """
    from monitor.jobs import run_job, summary

    if log_json:
        _json_logs()
    moment = _as_of(app, as_of) if as_of else None
    result = run_job(_runner(app, "cli"), "nightly", moment, wait_seconds=wait)
    if as_json:
        click.echo(json.dumps({"run_id": result.run_id, "status": result.status,
                               "as_of": result.as_of.isoformat(), "counts": result.counts,
                               "errors": result.errors}, ensure_ascii=False))
    else:
        click.echo(summary(result, app.config))
    if result.status != "ok":
        raise click.exceptions.Exit(1)
    if exit_code and result.new_red:
        raise click.exceptions.Exit(3)


@cli.command()
@click.option("--log-json", is_flag=True, help="Logs on stderr as JSON lines.")
@pass_app
def serve(app: App, log_json: bool) -> None:
    """Run the jobs of config.yaml's `schedule:` until stopped (the daemon).

    \b
    Default jobs (cron, in the configured timezone; `permit-monitor settings`):
      inbox, pull   */10 * * * *          every 10 minutes
      evaluate      0 8-18 * * mon-fri    hourly in working hours
      escalate      */30 8-18 * * mon-fri every 30 minutes in working hours
      nightly       0 2 * * *             the full pass at 02:00
      flush         * * * * *             deliver notifications every minute
    Jobs are kept in the database; a run missed while the daemon was down starts late
    (within schedule.misfire_grace_seconds) or is recorded as missed with an operational
    alert. Rule files are re-read at each run; an invalid edit is reported and the last
    good version keeps running. SIGTERM/SIGINT: the job in flight finishes, then exit 0
    (1 if it failed). Logs one line per job run on stderr (the journal under systemd).

    \b
    Change the times in config.yaml (a sixth field in front gives seconds; `off` stops a job):
      schedule:
        jobs: {inbox: '*/2 * * * *', evaluate: '0 8-18 * * mon-fri', pull: off}
    \b
    Try it for a minute, then stop it with Ctrl-C:
      permit-monitor serve
    See the README for a systemd unit.
    """
    from monitor.scheduling import serve as run_daemon

    if log_json:
        _json_logs()
    # A daemon's log is all its operator sees between start and stop (the journal under
    # systemd): one line per job run and per inbox file, at INFO, without needing -v.
    for name in ("monitor.scheduling", "monitor.inbox"):
        if logging.getLogger(name).getEffectiveLevel() > logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    code = run_daemon(_runner(app, "serve"))
    if code:
        raise click.exceptions.Exit(code)


@cli.group()
def runs() -> None:
    """Records of every run (nightly, the daemon's jobs): when, how it ended, what it did."""


@runs.command("list")
@click.option("--job", help="Only this job (nightly, evaluate, inbox, …).")
@click.option("--status", type=click.Choice(["running", "ok", "failed", "interrupted",
                                             "missed"]))
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@format_option
@pass_app
def runs_list(app: App, job, status, limit, fmt) -> None:
    """Newest first: id, job, trigger, status, start, duration, counts or error.

    A failed, interrupted or missed run has also raised an operational alert
    (permit-monitor alerts list --kind operational).
    """
    from monitor.filters import check_filters
    from monitor.runs import list_runs

    check_filters(app.engine, job=job)

    def text(r) -> str:
        at = r.started_at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
        took = f"{(r.finished_at - r.started_at).total_seconds():.0f}s" if r.finished_at else "-"
        counts = " ".join(f"{k}={v}" for k, v in r.counts.items()
                          if isinstance(v, int) and v)
        return (f"{r.id:>6}  {r.job:<9} {r.trigger:<6} {r.status:<11} {at}  {took:>5}  "
                + (r.error or counts))

    def record(r) -> dict:
        return {"id": r.id, "job": r.job, "trigger": r.trigger, "status": r.status,
                "scheduled_for": r.scheduled_for.isoformat() if r.scheduled_for else None,
                "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "counts": r.counts, "error": r.error}

    _echo_rows(list_runs(app.engine, job=job, status=status, limit=limit), text,
               fmt=fmt, record=record, empty="no runs")


# -------------------------------------- administration: the control center (users, tokens, web)


def _admin() -> str:
    """Who runs an account command on the server, for the trail (the OS account)."""
    import getpass

    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin:unknown"


def _local(app: App, at) -> str:
    return at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M") if at else "-"


@cli.group()
def users() -> None:
    """Sign-in of the catalog's users to the web UI: passwords, who has one, lockouts."""


@users.command("passwd")
@click.argument("user_id", metavar="USER")
@click.option("--password-stdin", is_flag=True,
              help="Read the new password from the first line of stdin (for scripts).")
@pass_app
def users_passwd(app: App, user_id: str, password_stdin: bool) -> None:
    """Set or reset USER's password (the user must change it at first login).

    It also unlocks the account and signs the user out of every browser. Without
    --password-stdin it is asked for twice, not echoed.

    \b
      printf '%s\\n' "$NEW_PASSWORD" | permit-monitor users passwd shj-monitor --password-stdin
    """
    from monitor.accounts import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    set_password(app.engine, user_id, password, app.now(), _admin())
    click.echo(f"{user_id}: password set · must be changed at first login")


@users.command("list")
@click.option("--all", "show_all", is_flag=True,
              help="Every catalog user (default: monitors, leaders and anyone with a password).")
@format_option
@pass_app
def users_list(app: App, show_all: bool, fmt: str) -> None:
    """Users with their roles, whether they have a password, last login and lock state."""
    from monitor.accounts import list_users

    now = app.now()

    def text(u) -> str:
        state = ("locked until " + _local(app, u.locked_until)
                 if u.locked_until and u.locked_until > now else
                 "must change password" if u.must_change else "active") \
            if u.has_password else "no password"
        return (f"{u.id:<16} {u.department or '-':<6} {','.join(u.roles):<22} "
                f"last login {_local(app, u.last_login_at):<16}  {state}")

    _echo_rows((u for u in list_users(app.engine) if show_all or u.has_password
                or {"monitor_l1", "monitor_l2", "leader"} & set(u.roles)),
               text, fmt=fmt, empty="no users")


@users.command("unlock")
@click.argument("user_id", metavar="USER")
@pass_app
def users_unlock(app: App, user_id: str) -> None:
    """Lift a lockout (failed logins) now instead of waiting for web.lockout_minutes."""
    from monitor.accounts import unlock

    click.echo(f"{user_id}: " + ("unlocked" if unlock(app.engine, user_id, app.now(), _admin())
                                 else "was not locked"))


@users.command("set-delivery")
@click.argument("user_id", metavar="USER")
@click.argument("mode", type=click.Choice(["immediate", "digest"]))
@pass_app
def users_set_delivery(app: App, user_id: str, mode: str) -> None:
    """How USER is told of new and risen alerts: immediate (one message each; held during
    notify.quiet_hours unless red) or digest (one message a day from notify.digest_at;
    red alerts still go at once). On the trail."""
    from monitor.tier1 import set_delivery

    click.echo(f"{user_id}: delivery {set_delivery(app.engine, user_id, mode, app.now(), _admin(), 'cli')}")


@cli.group()
def gate() -> None:
    """The workflow gate (事前拦截): would the rules refuse this event before it is recorded?"""


@gate.command("check")
@click.argument("file", metavar="EVENT.json", type=click.Path(dir_okay=False))
@click.option("--as-of", "as_of", metavar="TIME",
              help="Decide as of this moment (ISO 8601) [default: now].")
@pass_app
def gate_check(app: App, file: str, as_of: str | None) -> None:
    """Ask the gate about one candidate event, as POST /api/v1/gate does; print its answer.

    EVENT.json holds one object of the input contract's fields (case_id, item_code, step,
    actor, occurred_at, attachments, amount, channel …). The rules with `gate: deny` or
    `gate: warn` judge the case's stored history plus this event; nothing is stored but the
    answer's line in the gate log (and a deny's on the trail).

    \b
      permit-monitor gate check survey.json
      {"decision": "deny", "reasons": [{"rule_id": "step_too_fast", …}], …}
    """
    from monitor.gate import read_candidate
    from monitor.gatelog import ask
    from monitor.regionrules import load_rule_sets

    verdict = ask(app.engine, app.config, load_rule_sets(app.config),
                  read_candidate(file), _as_of(app, as_of), _admin().replace("admin:", "cli:"),
                  "cli")
    click.echo(json.dumps(verdict.answer(), ensure_ascii=False, indent=2))


@cli.group()
def regions() -> None:
    """Names of administrative division codes (GB/T 2260): 330106 → 西湖区.

    Reports, scores and the web show a region as its code and name once the code is
    loaded here; a code with no name is shown bare. No list ships with the program:
    load the codes your deployment reports on, from 民政部's published list.
    """


@regions.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def regions_load_cmd(app: App, file: str) -> None:
    """Add or rename regions from a CSV FILE of `code,name` rows (UTF-8).

    A first row `code,name` (or `行政区划代码,单位名称`) is skipped. All or nothing: a
    bad code, a missing name or a code given twice is reported as FILE:LINE and nothing
    is loaded. Codes not in FILE are kept. The load is on the trail (`regions_loaded`).

    \b
      330106,西湖区
      330100,杭州市
    """
    from monitor.regionnames import load

    result = load(app.engine, file, app.now(), _os_user())
    click.echo(f"regions: added {result.added:,} · renamed {result.renamed:,} · "
               f"unchanged {result.unchanged:,}")


@regions.command("list")
@pass_app
def regions_list_cmd(app: App) -> None:
    """Every named region: code, name, level and parent code."""
    from monitor.regionnames import listing

    rows = listing(app.engine)
    for r in rows:
        click.echo(f"{r['code']}\t{r['name']}\t{r['level']}\t{r['parent']}")
    if not rows:
        click.echo("no region named yet: permit-monitor regions load FILE", err=True)


@cli.group("db")
def db_group() -> None:
    """The store's layout on PostgreSQL: events partitioned by county."""


@db_group.command("partition")
@pass_app
def db_partition_cmd(app: App) -> None:
    """Partition the events by county: one partition per county (LIST on `region`)
    and a DEFAULT one, so a county's statements read its partition only.

    PostgreSQL only, for a store of several counties (one county gains nothing). One
    transaction under an exclusive lock on the events: rows counted and their ids summed
    before and after, ids kept. A county that arrives later gets its partition with its
    first events or catalog. On the trail (`events_partitioned`). `db unpartition` undoes it.
    """
    from monitor.partitions import partition

    done = partition(app.engine, app.now(), _os_user())
    click.echo(f"events partitioned: {done.rows:,} rows in {len(done.partitions)} partitions "
               f"({', '.join(done.partitions)})")


@db_group.command("unpartition")
@pass_app
def db_unpartition_cmd(app: App) -> None:
    """Make the partitioned events one table again (refused while two counties store the
    same event_id: the one table keys an event_id store-wide). On the trail."""
    from monitor.partitions import unpartition

    done = unpartition(app.engine, app.now(), _os_user())
    click.echo(f"events in one table again: {done.rows:,} rows")


@cli.group()
def tokens() -> None:
    """Bearer tokens for the API (/api/v1): personal, or a machine's with a read scope."""


@tokens.command("create")
@click.option("--user", "user_id", metavar="USER", help="A personal token: acts as USER.")
@click.option("--service", metavar="NAME", help="A machine's token (e.g. the workflow system).")
@click.option("--scope", metavar="SCOPE",
              help="With --service: read (the whole county), read:DEPT (one department) or "
                   "gate (the workflow system: asks the gate, acknowledges holds).")
@click.option("--expires", default="90d", show_default=True, metavar="DURATION",
              help="90d, 12h … or never.")
@pass_app
def tokens_create(app: App, user_id, service, scope, expires) -> None:
    """Create a token; it is printed once, on the last line of stdout, and stored hashed.

    \b
      permit-monitor tokens create --user shj-monitor --expires 30d
      permit-monitor tokens create --service oa --scope read
      curl -H "Authorization: Bearer pm_…" http://127.0.0.1:8000/api/v1/alerts
    """
    from monitor.accounts import create_token, parse_expiry

    now = app.now()
    ends = parse_expiry(expires, now)
    token_id, token = create_token(app.engine, now, _admin(), user_id=user_id,
                                   service=service, scope=scope, expires_at=ends)
    owner = f"user {user_id}" if user_id else f"service {service} ({scope})"
    click.echo(f"token {token_id} for {owner}, expires {_local(app, ends) if ends else 'never'}; "
               "shown once, keep it secret:")
    click.echo(token)


@tokens.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked tokens.")
@format_option
@pass_app
def tokens_list(app: App, show_all: bool, fmt: str) -> None:
    """Tokens: id, the first characters, owner, scope, expiry, last use (never the token)."""
    from monitor.accounts import list_tokens

    def text(t) -> str:
        owner = f"user {t.user_id}" if t.user_id else f"service {t.service} ({t.scope})"
        state = f"revoked {_local(app, t.revoked_at)}" if t.revoked_at else (
            f"expires {_local(app, t.expires_at)}" if t.expires_at else "never expires")
        return (f"{t.id:>4}  {t.prefix}…  {owner:<28} {state:<26} "
                f"last used {_local(app, t.last_used_at)}")

    _echo_rows(list_tokens(app.engine, show_all), text, fmt=fmt, empty="no tokens")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@pass_app
def tokens_revoke(app: App, token_id: int) -> None:
    """Revoke a token now (kept, marked revoked)."""
    from monitor.accounts import revoke_token

    revoke_token(app.engine, token_id, app.now(), _admin())
    click.echo(f"token {token_id}: revoked")


WEB_WORKERS_MAX = 32  # web --workers: more than the store's connections would bear


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put HTTPS in front).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--as-of", "as_of", metavar="ISO8601",
              help="Start the server's clock at this moment and let it run from there (a demo "
                   "or a training copy: deadlines, working days left and actions as if it "
                   "were then). Default: the real time.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, WEB_WORKERS_MAX),
              help="Worker processes serving on the one port, each with its own database "
                   "connections: about one per core the server has to itself, for the "
                   "workflow gate's decisions under load (one process uses one core). Pays "
                   "on PostgreSQL; on SQLite every gate decision writes (the candidate "
                   "event it tries, then its log line) and one writer at a time holds the "
                   "file, so decisions queue whatever the number.")
@pass_app
def web(app: App, host: str, port: int, as_of: str | None, workers: int) -> None:
    """Serve the control center (行权控制中心): the web UI and the API (/api/v1).

    Department monitors see and act on their department's alerts, the county office on
    all of them, leaders read. Users sign in with a password set by `users passwd`.
    The OpenAPI document is at /api/v1/openapi.json.

    \b
      permit-monitor users passwd shj-monitor
      permit-monitor web --port 8000        then open http://127.0.0.1:8000/
      permit-monitor web --workers 2        the gate on a 2-core server (PostgreSQL)
    """
    from sqlalchemy.engine import make_url

    from monitor.web import Origin, serve

    _warn_if_no_events(app)
    path = app.config.path and str(app.config.path.resolve())
    origin = Origin.starting(app.url, path, _as_of(app, as_of) if as_of else None,
                             logging.getLogger().getEffectiveLevel())
    if workers > 1 and make_url(app.url).get_backend_name() == "sqlite":
        click.echo(f"warning: {workers} workers on SQLite: every gate decision writes (the "
                   "candidate event it tries, its log line) and SQLite has one writer at a "
                   "time, so decisions queue for the file whatever the number of workers; "
                   "the pages still gain. PostgreSQL is where workers pay", err=True)
    processes = f", {workers} worker processes" if workers > 1 else ""
    click.echo(f"permit-monitor web: http://{host}:{port}/{processes} (Ctrl-C stops it)",
               err=True)
    serve(app.engine, app.config, origin, host, port, workers)


def main(prog_name: str | None = None) -> None:
    cli.main(prog_name=prog_name or "permit-monitor")


if __name__ == "__main__":
    main()
