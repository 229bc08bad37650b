"""A county's own rule in a real headless Chromium against the real uvicorn server of
tests/test_region_web_rules.py (issue 21 item 1): 西湖区's office picks its own rule in
the alert list's filter, opens its alert and exempts the rule for its department."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from monitor.models import Exemption, TrailEntry
from test_region_web_rules import B, PASSWORD, _alert, server, store  # noqa: F401 (fixtures)
from web_county import BROWSER_ARGS, CHROMIUM

pytestmark = pytest.mark.slow
if not shutil.which("chromium"):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def test_a_county_office_filters_by_and_exempts_its_own_rule(store, server):  # noqa: F811
    _, engine, _ = store
    b_own = _alert(engine, B, "b-fast")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_context(locale="zh-CN").new_page()
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{server.url}/login")
            page.fill("input[name=user_id]", "bk")
            page.fill("input[name=password]", PASSWORD)
            page.click("form[action='/login'] button[type=submit]")
            page.wait_for_url("**/board")
            page.goto(f"{server.url}/alerts")
            page.select_option("select[name=rule]", "b-fast")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**rule=b-fast**")
            rows = page.locator("tr[data-alert]")
            assert rows.count() == 1 and rows.get_attribute("data-alert") == str(b_own)
            page.click(f"tr[data-alert='{b_own}'] td a >> nth=0")
            page.wait_for_url(f"**/alerts/{b_own}")
            assert page.locator("[data-title]").inner_text() == "西湖区自定：受理后即踏勘"
            page.select_option("form[data-action=exempt] select[name=scope]", "department")
            page.fill("form[data-action=exempt] textarea[name=reason]", "踏勘与受理同场办理")
            page.fill("form[data-action=exempt] input[name=until]", "2025-12-31")
            page.click("form[data-action=exempt] button")
            page.wait_for_url("**?done=exempt")
            assert dialogs == []
        finally:
            browser.close()
    with engine.connect() as conn:
        row = conn.execute(select(Exemption.rule_id, Exemption.scope, Exemption.region)).one()
        channel = conn.scalar(select(TrailEntry.channel).where(
            TrailEntry.action == "exemption_added"))
    assert tuple(row) == ("b-fast", {"department": ["D04"]}, B) and channel == "web"
