"""The integrity of the record — the ``audit`` section: the trail's hash function and where
its signed checkpoints (anchors) go (monitor/anchor.py, docs/security.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean
from .settings import Setting, declared, read_section, section

HASHES = ("sha256", "sm3")  # monitor/chainhash.py
SIGNATURES = ("hmac", "ed25519")
AUDIT_KEY_ENV = "MONITOR_AUDIT_KEY"

AUDIT_SETTINGS: tuple[Setting, ...] = (
    Setting("hash", "sha256", str,
            "Hash function of the trail's chain: sha256, or sm3 (国密 GB/T 32905-2016). Taken "
            "by a new (empty) trail; a trail keeps the one it was started with."),
    Setting("anchor_dir", None, str,
            "Directory (relative to config.yaml) where nightly writes a signed anchor of the "
            "trail after each run; unset: nightly writes none. Keep it off the database "
            "server."),
    Setting("anchor_webhook", None, str,
            "http(s) address nightly POSTs each signed anchor to (JSON); unset: none."),
    Setting("signature", "hmac", str,
            f"How anchors are signed with the key in ${AUDIT_KEY_ENV}: hmac (HMAC-SHA256, "
            "a shared secret) or ed25519 (a private key; needs the cryptography package)."),
)


@dataclass(frozen=True)
class AuditConfig:
    hash: str = declared(AUDIT_SETTINGS, "hash")
    anchor_dir: Path | None = declared(AUDIT_SETTINGS, "anchor_dir")
    anchor_webhook: str | None = declared(AUDIT_SETTINGS, "anchor_webhook")
    signature: str = declared(AUDIT_SETTINGS, "signature")

    @property
    def anchors(self) -> bool:
        """Whether nightly anchors the trail."""
        return self.anchor_dir is not None or self.anchor_webhook is not None


def load_audit(raw: Any, where: str, base_dir: Path) -> AuditConfig:
    raw = section(raw, "audit", where)
    values = read_section(raw, AUDIT_SETTINGS, where)
    for name, choices in (("hash", HASHES), ("signature", SIGNATURES)):
        if values[name] not in choices:
            raise ConfigError(where, raw.line_of(name),
                              f"unknown audit.{name} '{values[name]}'"
                              f"{did_you_mean(values[name], choices)}; one of "
                              f"{', '.join(choices)}")
    hook = values["anchor_webhook"]
    if hook is not None and not hook.startswith(("http://", "https://")):
        raise ConfigError(where, raw.line_of("anchor_webhook"),
                          "'audit.anchor_webhook' must be an http:// or https:// address")
    return AuditConfig(hash=values["hash"], signature=values["signature"],
                       anchor_dir=base_dir / values["anchor_dir"] if values["anchor_dir"]
                       else None, anchor_webhook=hook)
