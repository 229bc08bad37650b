"""The trail's hash function: SHA-256 or SM3 (国密), checked against GB/T 32905-2016's
test vectors from both sources (OpenSSL through hashlib, and gmssl), and a chain that
records which one it uses."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, update

from monitor import chainhash, trail
from monitor.chainhash import ChainHashError
from monitor.models import TrailEntry, TrailHead
from monitor.trail import Entry, TrailBroken, adopt
from monitor.trailcheck import verify

# GB/T 32905-2016 appendix A: example 1 ("abc") and example 2 ("abcd" × 16, 512 bits)
VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]
AT = datetime(2025, 10, 9, 2, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("message, expected", VECTORS)
def test_sm3_matches_the_standards_vectors(message, expected):
    assert chainhash.digest("sm3")(message) == expected


@pytest.mark.parametrize("message, expected", VECTORS)
def test_gmssl_fallback_matches_the_standards_vectors(message, expected, monkeypatch):
    monkeypatch.setattr(hashlib, "algorithms_available", {"sha256"})
    assert chainhash.sm3_backend() == "gmssl"
    assert chainhash.digest("sm3")(message) == expected


def test_no_sm3_anywhere_is_one_clear_error(monkeypatch):
    import sys

    monkeypatch.setattr(hashlib, "algorithms_available", {"sha256"})
    monkeypatch.setitem(sys.modules, "gmssl", None)  # import gmssl raises ImportError
    with pytest.raises(ChainHashError, match=r"SM3 is not available.*permit-monitor\[sm3\]"):
        chainhash.digest("sm3")


def test_unknown_hash_is_refused_with_a_suggestion():
    with pytest.raises(ChainHashError, match="unknown hash 'sm2' \\(did you mean 'sm3'\\?\\)"):
        chainhash.digest("sm2")


def test_sha256_genesis_is_the_one_every_existing_chain_starts_from():
    assert chainhash.genesis("sha256") == trail.GENESIS


def _append(engine, n=3):
    for i in range(n):
        with engine.begin() as conn:
            trail.append(conn, AT, [Entry("note", None, "k1", {"i": i})])


def test_an_sm3_chain_records_its_hash_and_verifies(engine):
    adopt(engine, "sm3")
    _append(engine)
    with engine.connect() as conn:
        head = conn.execute(select(TrailHead)).one()
        first = conn.execute(select(TrailEntry).where(TrailEntry.seq == 1)).one()
    assert head.algorithm == "sm3"
    assert first.prev_hash == chainhash.genesis("sm3")
    assert first.hash == chainhash.digest("sm3")(trail.canonical(
        1, AT, None, "note", "k1", {"i": 0}, first.prev_hash))
    result = verify(engine)
    assert (result.entries, result.head, result.algorithm) == (3, head.hash, "sm3")


def test_a_trail_with_entries_keeps_its_hash(engine):
    _append(engine, 1)
    with pytest.raises(TrailBroken, match="chained with sha256 and has 1 entries; audit.hash: "
                                          "sm3 applies only to a new trail"):
        adopt(engine, "sm3")
    adopt(engine, "sha256")  # the same: nothing to do
    assert verify(engine).algorithm == "sha256"


def test_relabelling_the_chain_s_hash_breaks_it(engine):
    adopt(engine, "sm3")
    _append(engine)
    with engine.begin() as conn:
        conn.execute(update(TrailHead).values(algorithm="sha256"))
    with pytest.raises(TrailBroken, match="trail entry #1 .* does not chain"):
        verify(engine)


def test_the_setting_reaches_a_new_store_through_the_cli(tmp_path, db_url):
    from click.testing import CliRunner

    from cli import cli

    (tmp_path / "config.yaml").write_text("audit: {hash: sm3}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.yaml"), "--db",
                                      db_url, "audit", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("trail intact: 0 entries · head "
                                    + chainhash.genesis("sm3"))


def test_an_unknown_hash_setting_is_a_config_error_with_its_line(tmp_path):
    from monitor.config import load_config
    from monitor.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text("timezone: Asia/Shanghai\naudit:\n  hash: sha265\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}:3: unknown audit.hash 'sha265' (did you mean "
                              "'sha256'?); one of sha256, sm3")
