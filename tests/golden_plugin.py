"""Collects the golden rule tests (tests/rules/test_*.yaml) as pytest items, one per test,
run by the same code as ``permit-monitor rules test`` — on SQLite, or on the PostgreSQL
server of $MONITOR_TEST_DATABASE_URL in CI's second pass. Hooked in from conftest.py."""

from __future__ import annotations

import os
from functools import partial

import pytest

from monitor.db import scratch_database
from monitor.ruletools.golden import load_golden, run_test


class GoldenFailed(Exception):
    """A golden test's alerts differ from the expected ones (the message is the diff)."""


class GoldenFile(pytest.File):
    def collect(self):
        golden = load_golden(self.path)
        for test in golden.tests:
            yield GoldenItem.from_parent(self, name=test.name, golden=golden, test=test)


class GoldenItem(pytest.Item):
    def __init__(self, *, golden, test, **kwargs):
        super().__init__(**kwargs)
        self.golden, self.test = golden, test

    def runtest(self):
        scratch = partial(scratch_database, server_url=os.environ.get("MONITOR_TEST_DATABASE_URL"))
        result = run_test(self.golden, self.test, scratch)
        if not result.ok:
            raise GoldenFailed(result.report())

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, GoldenFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.test.line - 1, f"golden: {self.test.name}"


def collect(parent, file_path):
    if file_path.suffix == ".yaml" and file_path.name.startswith("test_") \
            and file_path.parent.name == "rules":
        return GoldenFile.from_parent(parent, path=file_path)
    return None
