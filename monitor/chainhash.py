"""The hash functions a trail can be chained with: SHA-256 (the default) or SM3 (国密,
GB/T 32905-2016).

SM3 comes from OpenSSL through :mod:`hashlib` where the local OpenSSL provides it
(OpenSSL 1.1.1 and 3.x do unless built with ``no-sm3``); otherwise from the pure-Python
``gmssl`` package (``pip install 'permit-monitor[sm3]'``), loaded only then. Both are
checked against the standard's test vectors (tests/test_chainhash.py).

A chain records which function it uses (``trail_head.algorithm``, migration 0015) and
every anchor names it, so a verifier never has to guess.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .errors import MonitorError, did_you_mean

ALGORITHMS = ("sha256", "sm3")
DEFAULT = "sha256"
GENESIS_SEED = b"permit-monitor trail v1"  # what the first entry's prev_hash is the hash of

Digest = Callable[[bytes], str]


class ChainHashError(MonitorError):
    """A hash a chain names is unknown, or SM3 is not available on this machine."""


def _sm3_gmssl(data: bytes) -> str:
    from gmssl import func, sm3  # type: ignore[import-untyped]  # only where OpenSSL has none

    return sm3.sm3_hash(func.bytes_to_list(data))


def sm3_backend() -> str:
    """Where SM3 comes from here: ``openssl`` (hashlib), ``gmssl``, or ``none``."""
    if "sm3" in hashlib.algorithms_available:
        return "openssl"
    try:
        import gmssl  # noqa: F401
    except ImportError:
        return "none"
    return "gmssl"


def digest(algorithm: str) -> Digest:
    """The function ``bytes → hex digest`` of ``algorithm``; a :class:`ChainHashError` for an
    unknown one, or for SM3 where neither OpenSSL nor gmssl provides it."""
    if algorithm == "sha256":
        return lambda data: hashlib.sha256(data).hexdigest()
    if algorithm == "sm3":
        backend = sm3_backend()
        if backend == "openssl":
            return lambda data: hashlib.new("sm3", data).hexdigest()
        if backend == "gmssl":
            return _sm3_gmssl
        raise ChainHashError("SM3 is not available: this Python's OpenSSL "
                          "has no sm3 and the gmssl package is not installed "
                          "(pip install 'permit-monitor[sm3]')")
    raise ChainHashError(f"unknown hash '{algorithm}'"
                      f"{did_you_mean(algorithm, ALGORITHMS)}; one of {', '.join(ALGORITHMS)}")


def genesis(algorithm: str, region: str | None = None) -> str:
    """What the first entry of a chain hashed with ``algorithm`` chains to.

    ``region``: a chain begun for one region (monitor/trail.py) chains to the hash of the
    seed followed by a space and the region's code, so a chain relabelled as another
    region's fails at its first entry. None: the unbound genesis, which the store's own
    chain keeps (every chain begun before chains per region, and a single county's)."""
    seed = GENESIS_SEED if region is None else GENESIS_SEED + b" " + region.encode("ascii")
    return digest(algorithm)(seed)
