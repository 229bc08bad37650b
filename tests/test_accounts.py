"""Accounts (passwords, lockout, sessions, tokens), the one permission function, and the
trail's channel: new entries carry it under their hash, old chains verify as before."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, inspect, select, text, update

from cli import cli
from conftest import NOW
from monitor import accounts, authz
from monitor.authz import Actor
from monitor.config import WebConfig
from monitor.db import _alembic_config, open_store
from monitor.models import Account, Activity, TrailEntry, TrailHead
from monitor.trail import GENESIS, TrailBroken, entry_hash
from monitor.trailcheck import verify
from test_supervision import CATALOG, raise_one

WEB = WebConfig(idle_minutes=30, lockout_attempts=5, lockout_minutes=15)
LEADER = "  - {id: boss, name: 县长, department: JW, roles: [leader]}\n"
PASSWORD = "长城-Great-Wall-7"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """argon2id with a small cost: the tests check behaviour, not hashing strength."""
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                           parallelism=1))
    accounts._DUMMY.clear()


@pytest.fixture
def county(engine, config, tmp_path, write_events):
    """The supervision test county (plus a leader) with one red alert in D04."""
    catalog = CATALOG.replace("items:\n", LEADER + "items:\n")
    alert_id = raise_one(engine, config, tmp_path, write_events, catalog=catalog)
    return SimpleNamespace(engine=engine, alert=alert_id)


def run(engine, *args, stdin=None):
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--db", url, *map(str, args)], input=stdin)


def activity(engine, user):
    with engine.connect() as conn:
        return [a for a, in conn.execute(select(Activity.action).where(Activity.user_id == user)
                                         .order_by(Activity.at, Activity.id))]


# ---------------------------------------------------------------- passwords and logins


def test_login_with_the_password_an_admin_set_must_change_it_first(county):
    e = county.engine
    accounts.set_password(e, "m4", PASSWORD, NOW, "admin:root")
    s = accounts.login(e, "m4", PASSWORD, NOW, WEB)
    assert s.must_change and s.token and s.user.id == "m4"
    accounts.change_password(e, "m4", PASSWORD, "新的口令-New-Pass-8", NOW)
    again = accounts.login(e, "m4", "新的口令-New-Pass-8", NOW + timedelta(minutes=1), WEB)
    assert not again.must_change
    assert activity(e, "m4") == ["login", "login"]
    with e.connect() as conn:
        stored = conn.scalar(select(Account.password_hash).where(Account.user_id == "m4"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


@pytest.mark.parametrize("user, password", [("m4", "wrong-password-1"),
                                            ("nobody", PASSWORD), ("m7", PASSWORD)])
def test_every_failed_login_reads_the_same(county, user, password):
    accounts.set_password(county.engine, "m4", PASSWORD, NOW, "admin:root")
    with pytest.raises(accounts.LoginFailed) as failed:
        accounts.login(county.engine, user, password, NOW, WEB)
    assert str(failed.value) == "用户名或密码错误，或账户已被暂时锁定。"


def test_five_failures_lock_the_account_for_fifteen_minutes(county):
    e = county.engine
    accounts.set_password(e, "m4", PASSWORD, NOW, "admin:root")
    for i in range(5):
        with pytest.raises(accounts.LoginFailed):
            accounts.login(e, "m4", f"wrong-password-{i}", NOW + timedelta(seconds=i), WEB)
    with pytest.raises(accounts.LoginFailed):  # the right password, but locked
        accounts.login(e, "m4", PASSWORD, NOW + timedelta(minutes=14), WEB)
    assert accounts.login(e, "m4", PASSWORD, NOW + timedelta(minutes=16), WEB).token
    assert activity(e, "m4") == ["login_failed"] * 6 + ["login"]
    listed = run(e, "users", "list").stdout
    assert "m4 " in listed and "must change password" in listed and "no password" in listed


def test_a_session_ends_after_the_idle_timeout_and_at_logout(county):
    e = county.engine
    accounts.set_password(e, "m4", PASSWORD, NOW, "admin:root")
    token = accounts.login(e, "m4", PASSWORD, NOW, WEB).token
    at = NOW + timedelta(minutes=29)
    assert accounts.session_of(e, token, at, WEB, view=True).user.id == "m4"
    assert accounts.session_of(e, token, at + timedelta(minutes=29), WEB).user.id == "m4"
    assert accounts.session_of(e, token, at + timedelta(minutes=60), WEB) is None
    token = accounts.login(e, "m4", PASSWORD, at + timedelta(hours=2), WEB).token
    accounts.logout(e, token, at + timedelta(hours=3))
    assert accounts.session_of(e, token, at + timedelta(hours=3), WEB) is None
    assert accounts.session_of(e, "forged", at, WEB) is None
    assert activity(e, "m4") == ["login", "view", "login", "logout"]


def test_a_password_reset_signs_the_user_out(county):
    e = county.engine
    accounts.set_password(e, "m4", PASSWORD, NOW, "admin:root")
    token = accounts.login(e, "m4", PASSWORD, NOW, WEB).token
    accounts.set_password(e, "m4", "another-Pass-99", NOW, "admin:root")
    assert accounts.session_of(e, token, NOW, WEB) is None


def test_passwd_from_stdin_and_bad_passwords(county):
    e = county.engine
    ok = run(e, "users", "passwd", "m4", "--password-stdin", stdin=PASSWORD + "\n")
    assert (ok.exit_code, ok.stdout) == (0, "m4: password set · must be changed at first "
                                            "login\n")
    short = run(e, "users", "passwd", "m4", "--password-stdin", stdin="abc\n")
    assert short.stderr == "Error: the password must have at least 10 characters\n"
    unknown = run(e, "users", "passwd", "m44", "--password-stdin", stdin=PASSWORD + "\n")
    assert unknown.stderr == ("Error: unknown user 'm44' (did you mean 'm4'?): a user id "
                              "from the catalog\n")
    with e.connect() as conn:
        entry = conn.execute(select(TrailEntry).order_by(TrailEntry.seq.desc())).first()
    assert (entry.action, entry.channel, entry.detail) == (
        "password_set", "cli", {"user_id": "m4", "must_change": True})
    assert PASSWORD not in str(entry.detail)


# ---------------------------------------------------------------- API tokens


def test_tokens_are_shown_once_stored_hashed_and_revocable(county):
    e = county.engine
    made = run(e, "tokens", "create", "--user", "m4", "--expires", "30d")
    assert made.exit_code == 0, made.output
    token = made.stdout.splitlines()[-1]
    assert token.startswith("pm_") and len(token) > 40
    assert accounts.token_actor(e, token, NOW) is not None
    assert accounts.token_actor(e, token, NOW).id == "m4"
    with e.connect() as conn:
        assert token not in str(conn.execute(text("SELECT * FROM api_tokens")).all())
    listed = run(e, "tokens", "list").stdout
    assert token[:10] in listed and token not in listed
    assert run(e, "tokens", "revoke", "1").stdout == "token 1: revoked\n"
    assert accounts.token_actor(e, token, NOW) is None
    assert run(e, "tokens", "revoke", "1").stderr == "Error: token 1 was already revoked\n"


def test_service_tokens_read_with_a_scope(county):
    e = county.engine
    _, token = accounts.create_token(e, NOW, "admin:root", service="oa", scope="read:D04",
                                     expires_at=NOW + timedelta(days=1))
    actor = accounts.token_actor(e, token, NOW)
    assert (actor.id, actor.service, authz.visible_departments(actor)) == (
        "service:oa", "oa", frozenset({"D04"}))
    assert accounts.token_actor(e, token, NOW + timedelta(days=2)) is None  # expired
    bad = run(e, "tokens", "create", "--service", "oa", "--scope", "write")
    assert bad.stderr.startswith("Error: unknown scope 'write': a service token reads")
    both = run(e, "tokens", "create", "--service", "oa", "--user", "m4")
    assert both.stderr == "Error: a token is either a user's (--user) or a service's " \
                          "(--service)\n"
    assert run(e, "tokens", "create", "--user", "m4", "--expires", "soon").stderr == (
        "Error: bad --expires 'soon': use a number of days or hours like 90d or 12h, "
        "or never\n")


# ---------------------------------------------------------------- one permission function


def actor(roles, department="D04", service=None, scope=None):
    if service:
        return Actor.of_service(service, scope)
    return Actor("x", "某人", frozenset(roles), department, "web")


ALERT_D04 = SimpleNamespace(id=1, department="D04")
ALERT_D07 = SimpleNamespace(id=2, department="D07")


@pytest.mark.parametrize("who, action, alert, expected", [
    (actor(["monitor_l1"]), "view", ALERT_D04, True),
    (actor(["monitor_l1"]), "view", ALERT_D07, False),
    (actor(["monitor_l1"]), "ack", ALERT_D04, True),
    (actor(["monitor_l1"]), "resolve", ALERT_D07, False),
    (actor(["monitor_l1"]), "order", ALERT_D04, False),
    (actor(["monitor_l1"]), "confirm", ALERT_D04, False),
    (actor(["monitor_l2"], "JW"), "view", ALERT_D07, True),
    (actor(["monitor_l2"], "JW"), "order", ALERT_D07, True),
    (actor(["monitor_l2"], "JW"), "exempt", None, True),
    (actor(["leader"], "JW"), "view", ALERT_D07, True),
    (actor(["leader"], "JW"), "ack", ALERT_D07, False),
    (actor(["leader"], "JW"), "order", ALERT_D07, False),
    (actor(["clerk"]), "view", ALERT_D04, False),
    (actor(["clerk"]), "ack", ALERT_D04, False),
    (actor([], service="oa", scope="read"), "view", ALERT_D07, True),
    (actor([], service="oa", scope="read:D04"), "view", ALERT_D07, False),
    (actor([], service="oa", scope="read"), "ack", ALERT_D04, False),
])
def test_allowed(who, action, alert, expected):
    assert authz.allowed(who, action, alert) is expected


def test_a_leader_is_refused_on_the_cli_in_one_line(county):
    e = county.engine
    result = run(e, "alerts", "ack", county.alert, "--by", "boss", "--note", "看看")
    assert (result.exit_code, result.stderr) == (
        1, f"Error: boss (县长) may not acknowledge alert {county.alert}: a leader account "
           "reads, it does not act\n")
    exempt = run(e, "exemptions", "add", "--rule", "overdue", "--scope", "department=D04",
                 "--reason", "试点", "--approved-by", "boss", "--until", "2099-01-01")
    assert "boss (县长) may not approve an exemption: only a tier-2 monitor" in exempt.stderr


def test_cli_actions_are_traced_with_their_channel(county):
    e = county.engine
    assert run(e, "alerts", "escalate", county.alert, "--by", "m4").exit_code == 1
    assert run(e, "alerts", "ack", county.alert, "--by", "m4").exit_code == 0
    done = run(e, "alerts", "escalate", county.alert, "--by", "k1", "--note", "提前督办")
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"alert {county.alert}: escalated · tier 2 · open · order 1")
    again = run(e, "alerts", "escalate", county.alert, "--by", "k1")
    assert again.stderr == (f"Error: cannot escalate alert {county.alert}: it is already at "
                            "tier 2; only an open or acknowledged tier-1 alert can be "
                            "escalated\n")
    with e.connect() as conn:
        rows = conn.execute(select(TrailEntry.action, TrailEntry.actor, TrailEntry.channel)
                            .where(TrailEntry.alert_id.is_not(None))
                            .order_by(TrailEntry.seq)).all()
    assert [tuple(r) for r in rows] == [
        ("raised", "system", None), ("acknowledged", "m4", "cli"),
        ("escalated", "k1", "cli"), ("order_issued", "k1", "cli")]
    assert "channel=cli" in run(e, "audit", "show", county.alert).stdout
    assert run(e, "audit", "verify").exit_code == 0


# ---------------------------------------------------------------- the trail's channel


def test_channel_is_under_the_hash_of_new_entries_only(county):
    e = county.engine
    run(e, "alerts", "ack", county.alert, "--by", "m4")
    last = verify(e).entries  # the catalog's entries, raised, acknowledged
    with e.begin() as conn:  # clearing the channel of a person's entry breaks the chain
        conn.execute(update(TrailEntry).where(TrailEntry.seq == last).values(channel=None))
    with pytest.raises(TrailBroken, match=f"entry #{last} .* was changed"):
        verify(e)
    with e.begin() as conn:  # and so does giving one to an entry that had none
        conn.execute(update(TrailEntry).where(TrailEntry.seq == last).values(channel="cli"))
        conn.execute(update(TrailEntry).where(TrailEntry.seq == last - 1).values(channel="web"))
    with pytest.raises(TrailBroken, match=f"entry #{last - 1} .* was changed"):
        verify(e)


@pytest.mark.filterwarnings("ignore:Column 'trail.region' is marked as a member")
def test_a_chain_written_before_migration_0011_verifies_after_it(empty_db_url):
    """A trail written by the previous schema (no channel column; hashes over the fields
    without it) still verifies once the store is upgraded, and grows from there."""
    from alembic import command

    old = create_engine(empty_db_url)
    with old.begin() as conn:
        command.upgrade(_alembic_config(conn), "0010")
    at, prev, rows = datetime(2025, 10, 9, tzinfo=timezone.utc), GENESIS, []
    for seq, action in ((1, "raised"), (2, "acknowledged")):
        digest = entry_hash(seq, at, 1, action, "m4", {"tier": 1}, prev)
        rows.append({"seq": seq, "at": at, "alert_id": 1, "action": action, "actor": "m4",
                     "detail": {"tier": 1}, "prev_hash": prev, "hash": digest})
        prev = digest
    with old.begin() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("trail")}
        assert "channel" not in columns
        # the columns given: no channel, no region (0027 puts the chain under 000000)
        conn.execute(insert(TrailEntry.__table__), rows)
        conn.execute(update(TrailHead).values(seq=2, hash=prev))
    old.dispose()
    engine = open_store(empty_db_url)  # upgrades to head
    try:
        assert verify(engine).head == prev
        from monitor import trail

        with engine.begin() as conn:
            trail.append(conn, at, [trail.Entry("resolved", 1, "m4", {"tier": 1}, "web")])
        assert verify(engine).entries == 3
        with engine.connect() as conn:
            assert conn.scalar(select(TrailEntry.channel).where(TrailEntry.seq == 3)) == "web"
            assert conn.scalar(select(TrailHead.seq)) == 3
    finally:
        engine.dispose()
