"""permit-monitor command line: parse options, call one ``monitor`` function, format.

Errors a user can cause (``MonitorError``) become one ``Error: …`` line and exit code 1,
here and nowhere else; usage errors exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from functools import cached_property

import click

from monitor import __version__
from monitor.config import (MAPPING_SETTINGS, NOTIFY_SETTINGS, SETTINGS, load_config,
                            resolve_database_url)
from monitor.errors import MonitorError

log = logging.getLogger("monitor")


class App:
    """What every command needs, built on first use so ``--help`` never touches the database."""

    def __init__(self, config_path: str | None, db_url: str | None):
        self.config_path, self.db_url = config_path, db_url

    @cached_property
    def config(self):
        return load_config(self.config_path)

    @cached_property
    def url(self) -> str:
        return resolve_database_url(self.config, self.db_url)

    @cached_property
    def engine(self):
        from monitor.db import open_store

        return open_store(self.url)

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)


class MonitorGroup(click.Group):
    """The root group: the one place a MonitorError becomes ``Error: …`` and exit 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                click.echo(f"Error: {line}", err=True)
            ctx.exit(1)


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
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = App(config_path, db_url)


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
    click.echo("\nmapping: (XES import)")
    for s in MAPPING_SETTINGS:
        click.echo(f"  {s.name}  (default: {s.default!r})\n      {s.help}")
    click.echo("\nnotify: (delivery of notifications)")
    for s in NOTIFY_SETTINGS:
        click.echo(f"  {s.name}  (default: {s.default!r})\n      {s.help}")
    from monitor.config import INBOX_SETTINGS, SCHEDULE_SETTINGS

    for title, table in (("inbox: (the drop directory)", INBOX_SETTINGS),
                         ("schedule: (the serve daemon)", SCHEDULE_SETTINGS)):
        click.echo(f"\n{title}")
        for s in table:
            click.echo(f"  {s.name}  (default: {s.default!r})\n      {s.help}")


# ---------------------------------------------------------------- ingest


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


def _report(results, as_json: bool) -> None:
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


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print exactly one JSON object on stdout instead of text.")
encoding_option = click.option("--encoding", default="utf-8-sig", show_default=True,
                               help="Text encoding of CSV/JSONL input (e.g. gbk).")


@cli.group()
def ingest() -> None:
    """Load the catalog, workflow events or fiscal receipts into the database.

    Every run is idempotent: re-ingesting a file adds nothing. Rows that break the
    input contract are set aside in the quarantine with file, line and reason.
    """


@ingest.command("catalog")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def ingest_catalog_cmd(app: App, file: str) -> None:
    """Load or update departments, users and power items from a catalog YAML FILE.

    Entries are matched by code (users by id) and updated in place; events are never
    touched, and entries missing from FILE are kept.
    """
    from monitor.catalog import ingest_catalog

    result = ingest_catalog(app.engine, file)
    for name in ("departments", "users", "items"):
        click.echo(f"{name}: added {result.added[name]:,} · updated {result.updated[name]:,}"
                   f" · unchanged {result.unchanged[name]:,}")


@ingest.command("events")
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "xes"]),
              help="Input format [default: from the file name; sniffed for stdin].")
@encoding_option
@json_option
@pass_app
def ingest_events_cmd(app: App, files: tuple[str, ...], fmt: str | None, encoding: str,
                      as_json: bool) -> None:
    """Load workflow events from FILES (CSV, JSON Lines or XES; .gz too; - for stdin).

    \b
    Required columns: event_id, case_id, item_code, step, occurred_at.
    Optional: department, actor, recorded_at, amount, channel, attachments, days, note.
    The same event_id with the same content is a duplicate and skipped; with different
    content it is quarantined as a conflict and the first version is kept.
    """
    from monitor.ingest import ingest_events

    results = ingest_events(app.engine, app.config, list(files), app.now(), fmt=fmt,
                            encoding=encoding, progress=_progress_factory())
    _report(results, as_json)


@ingest.command("receipts")
@click.argument("files", nargs=-1, required=True)
@encoding_option
@json_option
@pass_app
def ingest_receipts_cmd(app: App, files: tuple[str, ...], encoding: str, as_json: bool) -> None:
    """Load fiscal receipts (CSV: department, period YYYY-MM, amount in yuan).

    A department-month already stored is replaced by the new amount.
    """
    from monitor.ingest import ingest_receipts

    results = ingest_receipts(app.engine, app.config, list(files), app.now(),
                              encoding=encoding, progress=_progress_factory())
    _report(results, as_json)


# ---------------------------------------------------------------- quarantine


@cli.group()
def quarantine() -> None:
    """Rows set aside during ingestion: list them, retry them after a catalog fix."""


@quarantine.command("list")
@click.option("--reason", help="Only this reason (e.g. unknown_item, bad_timestamp).")
@click.option("--source", help="Only rows from this file.")
@click.option("--all", "include_resolved", is_flag=True, help="Include rows since resolved.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_app
def quarantine_list(app: App, reason, source, include_resolved, limit, as_json) -> None:
    """Show quarantined rows: source:line, reason, detail and the raw row."""
    from monitor.ingest.quarantine import list_quarantine

    shown = 0
    for q in list_quarantine(app.engine, reason=reason, source=source,
                             include_resolved=include_resolved, limit=limit):
        shown += 1
        if as_json:
            click.echo(json.dumps({"id": q.id, "kind": q.kind, "source": q.source,
                                   "line": q.line, "reason": q.reason, "detail": q.detail,
                                   "raw": json.loads(q.raw), "resolution": q.resolution},
                                  ensure_ascii=False))
        else:
            state = f" [{q.resolution}]" if q.resolution else ""
            click.echo(f"{q.source}:{q.line}: {q.reason}: {q.detail}{state}\n    {q.raw}")
    if not shown and not as_json:
        click.echo("quarantine is empty" if not (reason or source) else "no matching rows",
                   err=True)


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


# ---------------------------------------------------------------- rules and alerts


def _as_of(app: App, text: str | None) -> datetime:
    """--as-of: ISO 8601 (naive = configured timezone; a bare date = its start); default now."""
    from monitor.timeutil import ValueProblem, parse_timestamp

    if not text:
        return app.now()
    try:
        return parse_timestamp(text if len(text) > 10 else f"{text}T00:00:00", app.config.tz)
    except ValueProblem as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None


@cli.command()
@click.option("--as-of", "as_of", metavar="ISO8601",
              help="Evaluate as of this moment (default: now). Naive = configured timezone.")
@click.option("--rule", "rule_ids", multiple=True, metavar="ID",
              help="Only this rule (repeatable); runs it even if disabled.")
@click.option("--dry-run", is_flag=True, help="Print the findings; write nothing.")
@click.option("--full", is_flag=True,
              help="Re-evaluate everything, not only what changed since the last run.")
@pass_app
def run(app: App, as_of: str | None, rule_ids: tuple[str, ...], dry_run: bool,
        full: bool) -> None:
    """Evaluate the rules in rules_dir and store what they find as alerts.

    Incremental: each rule looks again only at what new events touch since its last
    run (a changed rule, or an --as-of earlier than its last run, is evaluated in full).
    Re-running never duplicates an alert: each is kept once per rule and subject (the
    case, the burst, the department-month). Exit code 1 if any rule failed; the others
    still ran.
    """
    from monitor.engine import evaluate, render

    from monitor.rules.loader import load_rules

    moment = _as_of(app, as_of)
    rules = load_rules([app.config.rules_dir])
    with _exclusive(app, not dry_run):  # issue 5: never at the same time as nightly/serve
        outcomes = evaluate(app.engine, app.config, moment, rule_ids=rule_ids,
                            dry_run=dry_run, full=full, rules=rules)
        escalated = None if dry_run else _escalate(app, moment, rules)
    click.echo(f"as of {moment.astimezone(app.config.tz).isoformat()}"
               + (" (dry run: nothing written)" if dry_run else ""))
    failed = 0
    for o in outcomes:
        if o.error:
            failed += 1
            click.echo(f"  {o.rule.id:<22} FAILED: {o.error}")
            continue
        line = f"  {o.rule.id:<22} {len(o.findings):>6,} findings"
        if o.stored:
            line += f" · new {o.stored.new:,} · updated {o.stored.changed:,}"
        line += " (incremental)" if o.incremental else ""
        click.echo(line)
        if dry_run:
            for f in o.findings:
                level, message = render(o.rule, f)
                click.echo(f"    [{level}] {message}")
    if escalated is not None:
        _echo_escalated(escalated)
    if failed:
        raise click.exceptions.Exit(1)


def _escalate(app: App, moment: datetime, rules=None):
    from monitor.escalation import escalate

    return escalate(app.engine, _policy(app, rules), moment)


def _echo_escalated(result) -> None:
    line = (f"supervision: escalated {len(result.escalated):,} · reminded "
            f"{len(result.reminded):,} · messages queued {result.messages:,}")
    if result.assigned:
        line += f" · deadlines given to {len(result.assigned):,} older alerts"
    click.echo(line)


@cli.command("escalate")
@click.option("--as-of", "as_of", metavar="ISO8601",
              help="As of this moment (default: now). Naive = configured timezone.")
@pass_app
def escalate_cmd(app: App, as_of: str | None) -> None:
    """Escalate tier-1 alerts past their deadline to tier 2, and send due reminders.

    Each escalation issues a supervision order (督办) to the department's tier-1 monitors
    with a new deadline and queues an SMS to both tiers; a tier-2 alert past its order's
    deadline reminds its monitors once every reminder_days working days. Also run at the
    end of every `permit-monitor run`. Then `permit-monitor notify flush` delivers.
    """
    with _exclusive(app):
        _echo_escalated(_escalate(app, _as_of(app, as_of)))


@cli.group()
def notify() -> None:
    """The outbox of notifications: deliver what is pending, list what failed."""


@notify.command("flush")
@pass_app
def notify_flush(app: App) -> None:
    """Deliver pending notifications through the sinks in config.yaml (notify:).

    A failing sink is retried later with backoff; nothing is lost. Exit 1 if any message
    could not be delivered this time (it stays queued, or is marked failed with its error).
    """
    from monitor.jobs import release_orphans
    from monitor.outbox import flush

    with _exclusive(app):
        release_orphans(app.engine, app.now())
        result = flush(app.engine, app.config.notify, app.config.base_dir, app.now())
    click.echo(f"sent {result.sent:,} · retrying later {result.retrying:,} · "
               f"failed {result.failed:,}")
    for error in result.errors[:20]:
        click.echo(f"  {error}", err=True)
    if result.retrying or result.failed:
        raise click.exceptions.Exit(1)


@notify.command("list")
@click.option("--failed", is_flag=True, help="Only messages given up on, with their error.")
@click.option("--all", "show_all", is_flag=True, help="Include messages already delivered.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@pass_app
def notify_list(app: App, failed: bool, show_all: bool, limit: int | None) -> None:
    """List notifications not yet delivered (pending and failed), oldest first."""
    from monitor.outbox import list_messages

    shown = 0
    for m in list_messages(app.engine, status="failed" if failed else None,
                           undelivered=not show_all, limit=limit):
        shown += 1
        at = m.created_at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{m.id:>6}  {m.status:<8} {at}  alert {m.alert_id or '-':<5} "
                   f"{m.recipient} {m.channel} {m.address or '-'}  {m.text}")
        if m.last_error:
            click.echo(f"        attempts {m.attempts} · last error: {m.last_error}")
    if not shown:
        click.echo("no messages", err=True)


@cli.group()
def alerts() -> None:
    """Alerts raised by the rules: list them, show one with its evidence."""


ALERT_FORMATS = click.Choice(["table", "json", "csv"])


def _jsonable(row) -> dict:
    out = dict(row._mapping)
    for key in ("raised_at", "updated_at", "due_on", "resolved_at"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    return out


@alerts.command("list")
@click.option("--format", "fmt", type=ALERT_FORMATS, default="table", show_default=True)
@click.option("--kind", help="Only this rule kind (e.g. step_too_fast).")
@click.option("--level", type=click.Choice(["warning", "yellow", "red"]))
@click.option("--department", help="Only this department code.")
@click.option("--status", help="Only this status (e.g. open).")
@click.option("--rule", "rule_id", help="Only this rule id.")
@click.option("--tier", type=click.IntRange(1, 2),
              help="Only alerts at this tier (1: the department, 2: the county office).")
@click.option("--overdue", is_flag=True,
              help="Only alerts still to be acted on whose handling deadline has passed.")
@click.option("--as-of", "as_of", metavar="ISO8601", help="For --overdue (default: now).")
@pass_app
def alerts_list(app: App, fmt: str, kind, level, department, status, rule_id, tier, overdue,
                as_of) -> None:
    """List alerts; JSON is one array, CSV has a header row.

    The table shows id, level, tier, status, department, handling deadline, rule, message.
    """
    import csv as csv_module

    from monitor.alerts import ALERT_FIELDS, list_alerts

    today = _as_of(app, as_of).astimezone(app.config.tz).date() if overdue else None
    rows = list_alerts(app.engine, kind=kind, level=level, department=department,
                       status=status, rule_id=rule_id, tier=tier, overdue_on=today)
    if fmt == "json":
        click.echo(json.dumps([_jsonable(r) for r in rows], ensure_ascii=False, indent=1))
    elif fmt == "csv":
        writer = csv_module.writer(sys.stdout)
        writer.writerow(ALERT_FIELDS)
        for r in rows:
            d = _jsonable(r)
            writer.writerow([json.dumps(d[f], ensure_ascii=False) if isinstance(d[f], (dict, list))
                             else d[f] for f in ALERT_FIELDS])
    else:
        shown = 0
        for r in rows:
            shown += 1
            due = r.due_on.isoformat() if r.due_on else "-"
            click.echo(f"{r.id:>6}  {r.level:<7} T{r.tier} {r.status:<12} "
                       f"{r.department or '-':<6} {due:<10} {r.rule_id:<18} {r.message}")
        if not shown:
            click.echo("no alerts", err=True)


@alerts.command("show")
@click.argument("alert_id", type=int)
@pass_app
def alerts_show(app: App, alert_id: int) -> None:
    """Show one alert with its evidence (the events and figures behind it)."""
    from monitor.alerts import list_alerts
    from monitor.errors import MonitorError

    rows = list(list_alerts(app.engine, alert_id=alert_id))
    if not rows:
        raise MonitorError(f"no alert with id {alert_id}")
    click.echo(json.dumps(_jsonable(rows[0]), ensure_ascii=False, indent=2))


by_option = click.option("--by", "by", required=True, metavar="USER",
                         help="Who acts: a user id from the catalog (checked against its roles).")
note_option = click.option("--note", help="What was done, or why (recorded in the trail).")


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

    _echo_done(app, acknowledge(app.engine, alert_id, by, app.now(), note))


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

    _echo_done(app, resolve(app.engine, alert_id, by, app.now(), disposition, note))


@alerts.command("confirm")
@click.argument("alert_id", type=int)
@by_option
@note_option
@pass_app
def alerts_confirm(app: App, alert_id: int, by: str, note: str | None) -> None:
    """Tier 2: accept the disposition of an escalated alert, which closes it."""
    from monitor.supervision import confirm

    _echo_done(app, confirm(app.engine, alert_id, by, app.now(), note))


def _policy(app: App, rules=None):
    from monitor.rules.loader import load_rules
    from monitor.supervision import policy_for

    return policy_for(app.config, load_rules([app.config.rules_dir]) if rules is None else rules)


@alerts.command("reject")
@click.argument("alert_id", type=int)
@by_option
@click.option("--note", help="Why the disposition is not accepted; required.")
@pass_app
def alerts_reject(app: App, alert_id: int, by: str, note: str | None) -> None:
    """Tier 2: reject the disposition of an escalated alert; it reopens with a new order."""
    from monitor.supervision import reject

    _echo_done(app, reject(app.engine, _policy(app), alert_id, by, app.now(), note))


@alerts.command("order")
@click.argument("alert_id", type=int)
@by_option
@note_option
@pass_app
def alerts_order(app: App, alert_id: int, by: str, note: str | None) -> None:
    """Tier 2: issue a supervision order (督办) on any alert not closed, with a new deadline."""
    from monitor.supervision import order

    _echo_done(app, order(app.engine, _policy(app), alert_id, by, app.now(), note))


# ---------------------------------------------------------------- holds


@cli.group()
def holds() -> None:
    """Cases stopped in the workflow (中止流程) by rules with action: halt."""


@holds.command("list")
@click.option("--all", "include_released", is_flag=True, help="Include released holds.")
@click.option("--case", "case_id", help="Only holds on this case.")
@pass_app
def holds_list(app: App, include_released: bool, case_id: str | None) -> None:
    """List holds: id, case, alert, rule, since when, and who released it."""
    from monitor.holds import list_holds

    shown = 0
    for h in list_holds(app.engine, include_released=include_released, case_id=case_id):
        shown += 1
        at = h.held_at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
        line = (f"{h.id:>6}  {h.status:<8} {h.department or '-':<6} {h.case_id:<18} "
                f"alert {h.alert_id:<6} {h.rule_id:<18} held {at}")
        if h.released_by:
            line += f" · released by {h.released_by}: {h.release_note}"
        click.echo(line)
    if not shown:
        click.echo("no holds", err=True)


@holds.command("release")
@click.argument("hold_id", type=int)
@by_option
@click.option("--note", help="Why the case may go on; required.")
@pass_app
def holds_release(app: App, hold_id: int, by: str, note: str | None) -> None:
    """Release a hold (tier 1 of its department, or tier 2), so the case may go on."""
    from monitor.holds import release

    h = release(app.engine, _policy(app), hold_id, by, app.now(), note)
    click.echo(f"hold {h.id}: released · case {h.case_id} · alert {h.alert_id}")


# ---------------------------------------------------------------- audit trail


@cli.group()
def audit() -> None:
    """The supervision trail (全留痕): verify its hash chain, show an alert's history."""


@audit.command("verify")
@pass_app
def audit_verify(app: App) -> None:
    """Recompute the trail's hash chain; exit 1 naming the first broken entry.

    Keep the printed head hash somewhere else (a report, a log): a later verify that
    ends on the same entry must print the same hash.
    """
    from monitor.trail import verify

    result = verify(app.engine)
    click.echo(f"trail intact: {result.entries:,} entries · head {result.head}")


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
        detail = " ".join(f"{k}={_detail(v)}" for k, v in sorted(e.detail.items())
                          if v not in (None, "", []))
        click.echo(f"#{e.seq:<6} {at}  {e.action:<13} {e.actor:<12} {detail}")


def _detail(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if " " in text else text


# ---------------------------------------------------------------- demo


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
    bar = click.progressbar(length=days, label="replaying", file=sys.stderr,
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


# --- issue 5: scheduled and cron-driven audits (nightly, serve, runs, ingest pull) ---


def _exclusive(app: App, needed: bool = True):
    """The database lease around a command that writes alerts or delivers (see lease.py)."""
    from contextlib import nullcontext

    from monitor.jobs import exclusive

    return exclusive(app.engine, app.config, app.now) if needed else nullcontext()


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
               "level": record.levelname.lower(), "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _json_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_JsonLines())


def _runner(app: App, trigger: str):
    from monitor.jobs import Runner

    return Runner(app.engine, app.config, clock=app.now, trigger=trigger)


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
    the rules incrementally (everything since the last run: nothing missed after
    downtime, nothing raised twice), escalates, builds the day's report and delivers
    notifications. Holds the database lock while it runs: a second pass, the daemon or a
    hand-started `run` waits (lease_wait_seconds) or exits with an error.

    \b
    Exit codes: 0 ok · 1 error (a step failed; the run is recorded as failed and an
    operational alert raised) · 2 usage · 3 with --exit-code: new red alerts.
    Logs go to stderr (-v for each step; --log-json for JSON lines), a one-paragraph
    summary to stdout.

    \b
    Example crontab line (02:00 every night; cron mails the summary, exit 3 = red):
      0 2 * * *  cd /srv/monitor && .venv/bin/permit-monitor nightly --exit-code 2>>nightly.log
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
    (1 if it failed). See the README for a systemd unit.
    """
    from monitor.scheduling import serve as run_daemon

    if log_json:
        _json_logs()
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
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_app
def runs_list(app: App, job, status, limit, as_json) -> None:
    """Newest first: id, job, trigger, status, start, duration, counts or error.

    A failed, interrupted or missed run has also raised an operational alert
    (permit-monitor alerts list --kind operational).
    """
    from monitor.runs import list_runs

    shown = 0
    for r in list_runs(app.engine, job=job, status=status, limit=limit):
        shown += 1
        if as_json:
            click.echo(json.dumps({
                "id": r.id, "job": r.job, "trigger": r.trigger, "status": r.status,
                "scheduled_for": r.scheduled_for.isoformat() if r.scheduled_for else None,
                "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "counts": r.counts, "error": r.error}, ensure_ascii=False))
            continue
        at = r.started_at.astimezone(app.config.tz).strftime("%Y-%m-%d %H:%M")
        took = f"{(r.finished_at - r.started_at).total_seconds():.0f}s" if r.finished_at else "-"
        counts = " ".join(f"{k}={v}" for k, v in r.counts.items()
                          if isinstance(v, int) and v)
        click.echo(f"{r.id:>6}  {r.job:<9} {r.trigger:<6} {r.status:<11} {at}  {took:>5}  "
                   + (r.error or counts))
    if not shown:
        click.echo("no runs", err=True)


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
        _report((SourceResult(f"pull:{n}", pull(app.engine, app.config, n, app.now()))
                 for n in names), as_json)


def main(prog_name: str | None = None) -> None:
    cli.main(prog_name=prog_name or "permit-monitor")


if __name__ == "__main__":
    main()
