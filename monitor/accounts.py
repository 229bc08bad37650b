"""Accounts of the control center: passwords, lockout, browser sessions and API tokens.

People are the catalog's users; an administrator on the server sets a password
(``permit-monitor users passwd``), which the user must change at first login. Passwords
are hashed with argon2id (``argon2-cffi``'s defaults, RFC 9106's second profile).

- **Login** never says which part was wrong: an unknown user, a wrong password and a
  locked account get the same :class:`LoginFailed` sentence, after the same hashing
  work. ``lockout_attempts`` failures in a row lock the account for ``lockout_minutes``;
  each failure of a known user is written to the monitoring log (``login_failed``).
- **Sessions** live in ``web_sessions``: the browser holds a random token, the table its
  SHA-256 and the session's CSRF token. A session unused for ``idle_minutes`` ends.
  Logins, logouts and page views go to the monitoring log (the ``activity`` table that
  ``ingest activity`` fills), so online rates and ``inactive_monitor`` come from use.
- **API tokens** are shown once and stored as their SHA-256: personal (they act as their
  user) or a service's (a machine reading with scope ``read`` or ``read:DEPT``).

Setting a password and creating or revoking a token are appended to the trail. Time is
an argument (``at``); nothing here reads the clock.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, insert, select, update

from . import trail
from .authz import Actor
from .config import WebConfig
from .errors import MonitorError, NotFound, did_you_mean, usage
from .ingest.store import insert_ignoring_conflicts
from .models import Account, Activity, ApiToken, Department, User, WebSession
from .trail import Entry

log = logging.getLogger(__name__)
HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
MIN_PASSWORD = 10
TOKEN_PREFIX = "pm_"
TOUCH_SECONDS = 60  # a session's last use is written at most once a minute


class AccountError(MonitorError):
    """A password or token cannot be set as asked (too short, unknown user, bad scope)."""


class LoginFailed(MonitorError):
    """The one answer to any failed login: nothing tells which part was wrong."""

    def __init__(self) -> None:
        super().__init__("用户名或密码错误，或账户已被暂时锁定。")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_DUMMY: list[str] = []


def _burn(password: str) -> None:
    """The work of a real verification, for an unknown or locked account."""
    if not _DUMMY:
        _DUMMY.append(HASHER.hash(secrets.token_urlsafe(16)))
    try:
        HASHER.verify(_DUMMY[0], password)
    except VerificationError:
        pass


def _user(conn: Connection, user_id: str) -> Any:
    user = conn.execute(select(User).where(User.id == user_id)).one_or_none()
    if user is None:
        known = conn.scalars(select(User.id)).all()
        raise NotFound(f"unknown user '{user_id}'{did_you_mean(user_id, known)}: a user id "
                       "from the catalog")
    return user


def check_password(user_id: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if password.strip().lower() == user_id.lower() or len(set(password)) < 4:
        raise AccountError("the password is too easy to guess: not the user id, and at "
                           "least 4 different characters")


def log_activity(conn: Connection, user_id: str, at: datetime, action: str) -> None:
    """One row of the monitoring log (the same table ``ingest activity`` fills), of the
    user's region."""
    region = conn.scalar(select(User.region).where(User.id == user_id))
    insert_ignoring_conflicts(conn, Activity.__table__, [
        {"user_id": user_id, "at": at, "action": action, **({"region": region} if region else {})}
    ], ["user_id", "at", "action"])


# ---------------------------------------------------------------- passwords


def set_password(engine: Engine, user_id: str, password: str, at: datetime, by: str,
                 must_change: bool = True, channel: str = "cli") -> None:
    """Set or reset ``user_id``'s password (``by``: who did it, for the trail); it unlocks
    the account and ends the user's sessions."""
    check_password(user_id, password)
    digest = HASHER.hash(password)
    with engine.begin() as conn:
        trail.lock(conn)
        _user(conn, user_id)
        values = {"password_hash": digest, "must_change": must_change, "password_set_at": at,
                  "failed_logins": 0, "locked_until": None}
        if conn.execute(update(Account).where(Account.user_id == user_id)
                        .values(**values)).rowcount == 0:
            conn.execute(insert(Account).values(user_id=user_id, **values))
        _end_sessions(conn, user_id, at)
        trail.append(conn, at, [Entry("password_set", None, by, {
            "user_id": user_id, "must_change": must_change}, channel)])


def change_password(engine: Engine, user_id: str, old: str, new: str, at: datetime) -> None:
    """The user's own change (first login, or later): the old password must match."""
    with engine.connect() as conn:
        row = conn.execute(select(Account).where(Account.user_id == user_id)).one_or_none()
    if row is None or not _matches(row.password_hash, old):
        raise AccountError("the current password is wrong")
    if new == old:
        raise AccountError("the new password must differ from the current one")
    check_password(user_id, new)
    with engine.begin() as conn:
        conn.execute(update(Account).where(Account.user_id == user_id).values(
            password_hash=HASHER.hash(new), must_change=False, password_set_at=at))


def unlock(engine: Engine, user_id: str, at: datetime, by: str) -> bool:
    """Clear a lockout now; False if the account was not locked."""
    with engine.begin() as conn:
        trail.lock(conn)
        _user(conn, user_id)
        done = conn.execute(update(Account).where(Account.user_id == user_id,
                                                  Account.locked_until > at)
                            .values(locked_until=None, failed_logins=0)).rowcount
        if done:
            trail.append(conn, at, [Entry("account_unlocked", None, by, {"user_id": user_id},
                                          "cli")])
    return bool(done)


def _matches(digest: str, password: str) -> bool:
    try:
        return HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Session:
    """A signed-in browser: who, the CSRF token of its forms, the cookie token (only right
    after login: the store keeps its hash)."""

    user: Any
    csrf: str
    must_change: bool
    token: str | None = None

    def actor(self) -> Actor:
        return Actor.of_user(self.user, "web")


def login(engine: Engine, user_id: str, password: str, at: datetime, web: WebConfig,
          address: str = "-") -> Session:
    """Check a password and open a session; :class:`LoginFailed` on any failure (a known
    user's failure is counted and logged first, in its own committed transaction)."""
    user_id = user_id.strip()
    with engine.begin() as conn:
        account = conn.execute(select(Account).where(Account.user_id == user_id)
                               .with_for_update()).one_or_none()
        if account is None:
            _burn(password)
            log.warning("login failed for unknown user %r from %s", user_id[:64], address)
            raise LoginFailed()
        if account.locked_until is not None and account.locked_until > at:
            _burn(password)
            session = None
            log.warning("login refused for %s from %s: locked until %s", user_id, address,
                        account.locked_until.isoformat())
        elif not _matches(account.password_hash, password):
            session = None
            _count_failure(conn, account, at, web, address)
        else:
            session = _open(conn, account, password, at)
        if session is None:
            log_activity(conn, user_id, at, "login_failed")
    if session is None:
        raise LoginFailed()
    return session


def _count_failure(conn: Connection, account: Any, at: datetime, web: WebConfig,
                   address: str) -> None:
    failed = account.failed_logins + 1
    values: dict[str, Any] = {"failed_logins": failed}
    if failed >= web.lockout_attempts:
        values = {"failed_logins": 0,
                  "locked_until": at + timedelta(minutes=web.lockout_minutes)}
        log.warning("account %s locked for %d minutes after %d failed logins",
                    account.user_id, web.lockout_minutes, failed)
    conn.execute(update(Account).where(Account.user_id == account.user_id).values(**values))
    log.warning("login failed for %s from %s (%d in a row)", account.user_id, address, failed)


def _open(conn: Connection, account: Any, password: str, at: datetime) -> Session:
    changes: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": at}
    if HASHER.check_needs_rehash(account.password_hash):
        changes["password_hash"] = HASHER.hash(password)
    conn.execute(update(Account).where(Account.user_id == account.user_id).values(**changes))
    user = conn.execute(select(User).where(User.id == account.user_id)).one()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    conn.execute(insert(WebSession).values(id=_digest(token), user_id=account.user_id,
                                           csrf=csrf, created_at=at, last_seen_at=at))
    log_activity(conn, account.user_id, at, "login")
    return Session(user, csrf, account.must_change, token)


def session_of(engine: Engine, token: str | None, at: datetime, web: WebConfig,
               view: bool = False) -> Session | None:
    """The live session of a cookie token (its last use moved to ``at``), or ``None``: no
    such session, ended, or idle past ``idle_minutes`` (then it is ended). ``view``: the
    request is a page view, written to the monitoring log."""
    if not token:
        return None
    key = _digest(token)
    with engine.connect() as conn:
        row = conn.execute(
            select(WebSession, Account.must_change)
            .join(Account, Account.user_id == WebSession.user_id)
            .where(WebSession.id == key, WebSession.ended_at.is_(None))).one_or_none()
        user = None if row is None else conn.execute(
            select(User).where(User.id == row.user_id)).one_or_none()
    if row is None or user is None:
        return None
    idle = at - row.last_seen_at
    if idle > timedelta(minutes=web.idle_minutes):
        with engine.begin() as conn:
            conn.execute(update(WebSession).where(WebSession.id == key)
                         .values(ended_at=row.last_seen_at + timedelta(minutes=web.idle_minutes)))
        return None
    if view or idle.total_seconds() >= TOUCH_SECONDS:
        with engine.begin() as conn:
            if idle.total_seconds() >= TOUCH_SECONDS:
                conn.execute(update(WebSession).where(WebSession.id == key)
                             .values(last_seen_at=at))
            if view:
                log_activity(conn, row.user_id, at, "view")
    return Session(user, row.csrf, row.must_change)


def logout(engine: Engine, token: str | None, at: datetime) -> None:
    if not token:
        return
    with engine.begin() as conn:
        row = conn.execute(select(WebSession.user_id).where(
            WebSession.id == _digest(token), WebSession.ended_at.is_(None))).one_or_none()
        if row is None:
            return
        conn.execute(update(WebSession).where(WebSession.id == _digest(token))
                     .values(ended_at=at))
        log_activity(conn, row.user_id, at, "logout")


def _end_sessions(conn: Connection, user_id: str, at: datetime) -> None:
    conn.execute(update(WebSession).where(WebSession.user_id == user_id,
                                          WebSession.ended_at.is_(None)).values(ended_at=at))


@dataclass(frozen=True)
class UserRow:
    id: str
    name: str
    department: str | None
    roles: list[str]
    has_password: bool
    must_change: bool
    last_login_at: datetime | None
    locked_until: datetime | None


def list_users(engine: Engine) -> list[UserRow]:
    with engine.connect() as conn:
        rows = conn.execute(select(User, Account.user_id.label("account"), Account.must_change,
                                   Account.last_login_at, Account.locked_until)
                            .outerjoin(Account, Account.user_id == User.id)
                            .order_by(User.department, User.id)).all()
    return [UserRow(r.id, r.name, r.department, list(r.roles or []), r.account is not None,
                    bool(r.must_change), r.last_login_at, r.locked_until) for r in rows]


# ---------------------------------------------------------------- API tokens

DURATION = re.compile(r"(\d+)\s*([dh])")


def parse_expiry(text: str | None, at: datetime) -> datetime | None:
    """``90d``, ``12h`` → the moment it ends; ``never`` → ``None``."""
    text = (text or "90d").strip().lower()
    if text == "never":
        return None
    m = DURATION.fullmatch(text)
    if not m or int(m.group(1)) == 0:
        raise usage(AccountError(f"bad --expires '{text}': use a number of days or hours "
                                 "like 90d or 12h, or never"))
    n = int(m.group(1))
    return at + (timedelta(days=n) if m.group(2) == "d" else timedelta(hours=n))


def _check_scope(conn: Connection, scope: str | None) -> str:
    if scope in ("read", "gate"):
        return scope
    if scope and scope.startswith("read:"):
        dept = scope.partition(":")[2]
        known = set(conn.scalars(select(Department.code)))
        if dept in known:
            return scope
        raise AccountError(f"unknown department '{dept}' in scope{did_you_mean(dept, known)}")
    raise AccountError(f"unknown scope '{scope}': a service token reads, with scope read "
                       "(the whole county) or read:DEPT (one department), or is the workflow "
                       "system's, with scope gate")


def create_token(engine: Engine, at: datetime, by: str, *, user_id: str | None = None,
                 service: str | None = None, scope: str | None = None,
                 expires_at: datetime | None = None) -> tuple[int, str]:
    """(id, the token) — the token exists only in this return value."""
    if (user_id is None) == (service is None):
        raise usage(AccountError("a token is either a user's (--user) or a service's (--service)"))
    if service is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", service):
        raise AccountError(f"bad service name '{service}': letters, digits, . _ - only")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        trail.lock(conn)
        if user_id is not None:
            _user(conn, user_id)
            if scope:
                raise usage(AccountError("a personal token acts as its user: it takes no --scope"))
        else:
            scope = _check_scope(conn, scope)
        token_id = conn.execute(insert(ApiToken).values(
            token_hash=_digest(token), prefix=token[:10], user_id=user_id, service=service,
            scope=scope, created_at=at, expires_at=expires_at).returning(ApiToken.id)).scalar_one()
        trail.append(conn, at, [Entry("token_created", None, by, {
            "token_id": token_id, "user_id": user_id, "service": service, "scope": scope,
            "expires_at": expires_at.isoformat() if expires_at else None}, "cli")])
    return token_id, token


def list_tokens(engine: Engine, include_revoked: bool = False) -> list[Any]:
    query = select(ApiToken).order_by(ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    with engine.connect() as conn:
        return list(conn.execute(query))


def revoke_token(engine: Engine, token_id: int, at: datetime, by: str) -> None:
    with engine.begin() as conn:
        trail.lock(conn)
        row = conn.execute(select(ApiToken).where(ApiToken.id == token_id)).one_or_none()
        if row is None:
            raise NotFound(f"no token with id {token_id}")
        if row.revoked_at is not None:
            raise AccountError(f"token {token_id} was already revoked")
        conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=at))
        trail.append(conn, at, [Entry("token_revoked", None, by, {"token_id": token_id},
                                      "cli")])


def token_actor(engine: Engine, token: str, at: datetime) -> Actor | None:
    """Who a bearer token acts as, or ``None`` (unknown, revoked, expired)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with engine.connect() as conn:
        row = conn.execute(select(ApiToken).where(ApiToken.token_hash == _digest(token))
                           ).one_or_none()
        if row is None or row.revoked_at is not None or (
                row.expires_at is not None and row.expires_at <= at):
            return None
        user = None if row.user_id is None else conn.execute(
            select(User).where(User.id == row.user_id)).one_or_none()
    if row.user_id is not None and user is None:
        return None
    if row.last_used_at is None or (at - row.last_used_at).total_seconds() >= TOUCH_SECONDS:
        with engine.begin() as conn:
            conn.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=at))
    if user is not None:
        return Actor.of_user(user, "api")
    return Actor.of_service(row.service, row.scope)
