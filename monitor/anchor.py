"""Anchors: signed checkpoints of the trail kept outside the database (docs/security.md).

The hash chain (monitor/trail.py) catches any entry changed, removed or inserted in the
middle, but whoever owns the database can delete the newest entries and move the head
back, wipe the trail and reset it, or restore yesterday's backup: what is left is still a
valid chain. Only something the database does not hold remembers where the chain was. An
anchor is that memory: the number of entries, the head hash and the hash function of every
region's chain (one chain per region: monitor/trail.py), and the moment, signed with a key
from ``$MONITOR_AUDIT_KEY`` — written to a file (``audit anchor --out``, or the
``audit.anchor_dir`` setting after every nightly run) or POSTed to
``audit.anchor_webhook``. ``audit verify --anchor FILE…`` then fails unless the
trail still holds every anchored head at its anchored position.

Keys (``audit.signature``):

* ``hmac`` (default): HMAC-SHA256 with ``$MONITOR_AUDIT_KEY`` as the shared secret, text of
  at least 32 characters (``openssl rand -hex 32``). Whoever verifies needs the same secret:
  keep it off the database server and away from the database's owner.
* ``ed25519``: ``$MONITOR_AUDIT_KEY`` is the private key, 64 hex digits (its 32-byte seed:
  ``openssl rand -hex 32``); the anchor carries the public key, and a verifier pins it with
  ``$MONITOR_AUDIT_PUBLIC_KEY`` (64 hex digits; ``audit anchor --show-public-key`` prints
  it), so a verifier never holds the signing key. Needs the ``cryptography`` package.

The signed bytes are the anchor's other fields as canonical JSON (sorted keys, no
whitespace, UTF-8), so an anchor can be checked by hand with any HMAC or Ed25519 tool.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from . import trail, trailcheck
from .errors import MonitorError
from .models import TrailEntry

FORMAT = "permit-monitor-anchor/1"
KEY_ENV = "MONITOR_AUDIT_KEY"
PUBLIC_KEY_ENV = "MONITOR_AUDIT_PUBLIC_KEY"
MIN_HMAC_KEY = 32
TIMEOUT = 10  # seconds for the webhook


class AnchorError(MonitorError):
    """An anchor could not be written or read, or the trail no longer holds what it says."""


# ------------------------------------------------------------------ keys and signatures


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _hmac_key(environ: Mapping[str, str]) -> bytes:
    key = environ.get(KEY_ENV, "")
    if len(key) < MIN_HMAC_KEY:
        raise AnchorError(f"{KEY_ENV} is {'too short' if key else 'not set'}: anchors are "
                          f"signed with it (HMAC-SHA256); give it at least {MIN_HMAC_KEY} "
                          "characters, e.g. the output of `openssl rand -hex 32`")
    return key.encode("utf-8")


def _ed25519():
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise AnchorError("audit.signature ed25519 needs the cryptography package "
                          "(pip install 'permit-monitor[ed25519]')") from None
    return ed25519


def _hex32(name: str, value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise AnchorError(f"{name} must be 64 hex digits (an Ed25519 key), e.g. the output "
                          "of `openssl rand -hex 32` for a private key")
    return raw


def _private(environ: Mapping[str, str]):
    if not environ.get(KEY_ENV):
        raise AnchorError(f"{KEY_ENV} is not set: anchors are signed with it (Ed25519 "
                          "private key, 64 hex digits)")
    return _ed25519().Ed25519PrivateKey.from_private_bytes(
        _hex32(KEY_ENV, environ[KEY_ENV]))


def public_key(environ: Mapping[str, str] | None = None) -> str:
    """The Ed25519 public key (hex) of the private key in ``$MONITOR_AUDIT_KEY``."""
    from cryptography.hazmat.primitives import serialization as s

    return _private(_env(environ)).public_key().public_bytes(
        s.Encoding.Raw, s.PublicFormat.Raw).hex()


def _signed_bytes(fields: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in fields.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def _key_id(key: bytes) -> str:
    """Which HMAC key signed (not the key: a hash of it), to tell keys apart after a change."""
    return hashlib.sha256(b"permit-monitor anchor key " + key).hexdigest()[:16]


def sign(fields: dict[str, Any], signature: str,
         environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``fields`` with the signature fields added."""
    environ = _env(environ)
    if signature == "hmac":
        key = _hmac_key(environ)
        fields = {**fields, "signature_type": "hmac-sha256", "key_id": _key_id(key)}
        mac = hmac.new(key, _signed_bytes(fields), hashlib.sha256).hexdigest()
        return {**fields, "signature": mac}
    if signature == "ed25519":
        fields = {**fields, "signature_type": "ed25519", "public_key": public_key(environ)}
        return {**fields, "signature": _private(environ).sign(_signed_bytes(fields)).hex()}
    raise AnchorError(f"unknown audit.signature '{signature}'; one of hmac, ed25519")


def _check_signature(anchor: Mapping[str, Any], where: str, environ: Mapping[str, str]) -> None:
    kind = anchor.get("signature_type")
    forged = (f"{where}: the signature does not match: the anchor was altered, forged, or "
              "signed with another key")
    if kind == "hmac-sha256":
        key = _hmac_key(environ)
        mac = hmac.new(key, _signed_bytes(anchor), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, str(anchor.get("signature", ""))):
            raise AnchorError(forged)
        return
    if kind == "ed25519":
        pinned = environ.get(PUBLIC_KEY_ENV) or \
            (public_key(environ) if environ.get(KEY_ENV) else None)
        if not pinned:
            raise AnchorError(f"{where}: set {PUBLIC_KEY_ENV} (or {KEY_ENV}) to check an "
                              "Ed25519 anchor: the key inside the anchor proves nothing")
        if anchor.get("public_key") != pinned.lower():
            raise AnchorError(f"{where}: signed with another Ed25519 key than "
                              f"{PUBLIC_KEY_ENV}")
        from cryptography.exceptions import InvalidSignature

        key = _ed25519().Ed25519PublicKey.from_public_bytes(_hex32(PUBLIC_KEY_ENV, pinned))
        try:
            key.verify(bytes.fromhex(str(anchor.get("signature", ""))), _signed_bytes(anchor))
        except (InvalidSignature, ValueError):
            raise AnchorError(forged) from None
        return
    raise AnchorError(f"{where}: unknown signature_type {kind!r} (hmac-sha256 or ed25519)")


# ------------------------------------------------------------------ writing


def _chain_fields(v: trailcheck.Verified) -> dict[str, Any]:
    return {"entries": v.entries, "head": v.head, "algorithm": v.algorithm}


def make(engine: Engine, at: datetime, signature: str,
         environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A signed anchor of the trail as it is now; every chain is verified first, so a
    broken trail is never anchored (:class:`~monitor.trail.TrailBroken`).

    The store's own chain is anchored at the top level (``region``, ``entries``, ``head``,
    ``algorithm``, as a single county's anchor always was); the chain of every other
    region under ``chains``, region → the same three fields."""
    own, *others = trailcheck.verify_all(engine)
    fields = {"format": FORMAT, **_chain_fields(own), "region": own.region,
              "at": at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if others:
        fields["chains"] = {v.region: _chain_fields(v) for v in others}
    return sign(fields, signature, environ)


def file_name(anchor: Mapping[str, Any]) -> str:
    stamp = anchor["at"].replace("-", "").replace(":", "")
    return f"anchor-{stamp}-{anchor['entries']}.json"


def write(anchor: Mapping[str, Any], out: Path) -> Path:
    """Write ``anchor`` to the file ``out`` (or into ``out`` if it is a directory), whole or
    not at all (a temporary file renamed); the path written."""
    path = out / file_name(anchor) if out.is_dir() else out
    tmp = path.with_name(f".{path.name}.part")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(anchor, f, ensure_ascii=False, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise AnchorError(f"cannot write the anchor to {path}: {exc.strerror or exc}") from None
    return path


def post(anchor: Mapping[str, Any], url: str) -> None:
    """POST ``anchor`` as JSON to ``url``; any answer but 2xx is an :class:`AnchorError`."""
    body = json.dumps(anchor, ensure_ascii=False, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "permit-monitor",
        "Idempotency-Key": f"permit-monitor-anchor-{anchor['entries']}-{anchor['head'][:16]}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise AnchorError(f"anchor webhook: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise AnchorError(f"anchor webhook: {reason}") from None


@dataclass(frozen=True)
class Anchored:
    anchor: dict[str, Any]
    written: list[str]  # file paths and webhook addresses


def anchor(engine: Engine, at: datetime, signature: str, out: Path | None = None,
           directory: Path | None = None, webhook: str | None = None,
           environ: Mapping[str, str] | None = None) -> Anchored:
    """Make one anchor and send it everywhere asked: ``out`` (a file or a directory),
    ``directory`` (the ``anchor_dir`` setting) and ``webhook``."""
    made = make(engine, at, signature, environ)
    written = [str(write(made, target)) for target in (out, directory) if target]
    if webhook:
        post(made, webhook)
        written.append(webhook)
    return Anchored(made, written)


# ------------------------------------------------------------------ checking


@dataclass(frozen=True)
class Checked:
    verified: trailcheck.Verified     # the store's own chain (or the first region asked)
    anchors: list[dict[str, Any]]
    chains: list[trailcheck.Verified] = field(default_factory=list)  # every chain verified


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.glob("anchor-*.json")) if path.is_dir() else [path]
    return found


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnchorError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise AnchorError(f"{path}: not an anchor (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AnchorError(f"{path}: not an anchor (no \"format\": \"{FORMAT}\")")
    if not isinstance(data.get("entries"), int) or not isinstance(data.get("head"), str):
        raise AnchorError(f"{path}: not an anchor (entries and head missing)")
    return data


def _anchored(a: Mapping[str, Any], own: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(region, fields) of every chain an anchor holds: the top level is the store's own
    chain (an anchor written before chains per region names no region, and one written
    before the store's chain was named names ``000000``), then ``chains``."""
    top = a.get("region")
    out = [(own if top in (None, trail.UNNAMED) else str(top), a)]
    chains = a.get("chains")
    if isinstance(chains, dict):
        out += [(str(code), c) for code, c in sorted(chains.items()) if isinstance(c, dict)]
    return out


def _problem(engine: Engine, a: Mapping[str, Any], at: Any, where: str,
             verified: trailcheck.Verified) -> str | None:
    said = f"{where} (anchored {at}: entry #{a['entries']}, head {str(a['head'])[:12]}…)"
    if verified.region != trail.UNNAMED:
        said = f"{said}: region {verified.region}"
    if a.get("algorithm") != verified.algorithm:
        return (f"{said}: the anchored chain was hashed with {a.get('algorithm')}, the trail "
                f"now with {verified.algorithm}: the trail was replaced")
    if a["entries"] > verified.entries:
        return (f"{said}: the trail now ends at entry #{verified.entries}: anchored entries "
                "were removed (truncation, a wipe and reset, or a rollback to a backup)")
    found: str | None
    if a["entries"] == 0:
        found = trail.head_of(engine, verified.region).genesis
    else:
        with engine.connect() as conn:
            found = conn.scalar(select(TrailEntry.hash).where(
                TrailEntry.region == verified.region, TrailEntry.seq == a["entries"]))
    if found != a["head"]:
        return (f"{said}: trail entry #{a['entries']} now has hash {str(found)[:12]}…: the "
                "trail was rewritten after it was anchored")
    return None


def check(engine: Engine, paths: Iterable[Path],
          environ: Mapping[str, str] | None = None, visit: Any = None,
          only: Sequence[str] = ()) -> Checked:
    """Verify the chains (``visit``, ``only``: as :func:`monitor.trailcheck.verify_all`), then
    that each still holds every head anchored for it where it was anchored (a region's
    chain that is gone fails too); every anchor that does not hold is named (one
    :class:`AnchorError`)."""
    environ = _env(environ)
    chains = trailcheck.verify_all(engine, visit, only)
    verified = {v.region: v for v in chains}
    own = trail.head_of(engine).region
    files = _files(paths)
    if not files:
        raise AnchorError("no anchor files given (anchor-*.json in a directory, or files)")
    anchors, problems = [], []
    for path in files:
        a = load(path)
        _check_signature(a, str(path), environ)
        for region, fields in _anchored(a, own):
            if region not in verified:
                if not only:
                    problems.append(f"{path} (anchored {a.get('at')}): region {region} "
                                    "has no trail chain any more: it was removed")
                continue
            problem = _problem(engine, fields, a.get("at"), str(path), verified[region])
            if problem:
                problems.append(problem)
        anchors.append(a)
    if problems:
        raise AnchorError("\n".join(problems))
    return Checked(chains[0], anchors, chains)
