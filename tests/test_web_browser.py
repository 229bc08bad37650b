"""What people do in the control center, in a real headless Chromium (Debian's, driven by
Playwright with its executable path) against a real uvicorn server on 127.0.0.1: a
department monitor acknowledges and resolves, the county office orders 督办 and confirms,
a leader only reads; hostile text stays text; a form without its CSRF token is refused;
Chinese is drawn with the CJK font."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from monitor import accounts
from monitor.models import Alert, TrailEntry
from web_county import (BROWSER_ARGS, CHROMIUM, HOSTILE, PASSWORD, Server, build_county,
                        clock)

pytestmark = pytest.mark.slow
if not shutil.which("chromium"):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                           parallelism=1))
    accounts._DUMMY.clear()


@pytest.fixture
def county(engine, config, tmp_path, write_events):
    return build_county(engine, replace(config, rules_dir=tmp_path / "rules"), tmp_path,
                        write_events)


@pytest.fixture
def server(county):
    from monitor.web import create_app

    running = Server(create_app(county.engine, county.config, clock())).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def person(browser, server):
    """person(user) → a signed-in page of a fresh browser context; script dialogs fail."""
    contexts = []

    def open_as(user: str):
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.dialogs = dialogs
        page.goto(f"{server.url}/login")
        page.fill("input[name=user_id]", user)
        page.fill("input[name=password]", PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url("**/board")
        return page

    yield open_as
    for context in contexts:
        context.close()


def status(county) -> tuple[str, int]:
    with county.engine.connect() as conn:
        row = conn.execute(select(Alert.status, Alert.tier)).one()
    return row.status, row.tier


def test_a_department_monitor_sees_the_board_acknowledges_and_resolves(person, server,
                                                                        county):
    page = person("m4")
    light = page.locator("[data-department=D04]")
    assert light.get_attribute("data-light") == "red"
    assert page.locator("[data-department=D07]").count() == 0  # another department
    light.click()
    page.click(f"tr[data-alert='{county.alert}'] td a >> nth=0")
    page.wait_for_url(f"**/alerts/{county.alert}")
    assert page.locator("[data-actions]").get_attribute("data-actions") == "ack resolve"
    assert "受理" in page.locator("table.timeline").inner_text()
    page.fill("form[data-action=ack] textarea[name=note]", "已电话询问窗口")
    page.click("form[data-action=ack] button")
    page.wait_for_url("**?done=ack")
    assert page.locator("[role=status]").inner_text() == "已签收。"
    assert status(county) == ("acknowledged", 1)
    page.select_option("form[data-action=resolve] select[name=disposition]", "explained")
    page.fill("form[data-action=resolve] textarea[name=note]", "纸质审批在先，系统事后补录")
    page.click("form[data-action=resolve] button")
    page.wait_for_url("**?done=resolve")
    assert status(county) == ("resolved", 1)
    assert page.locator("[data-trail=intact]").count() == 1
    with county.engine.connect() as conn:
        trail = conn.execute(select(TrailEntry.action, TrailEntry.actor, TrailEntry.channel)
                             .order_by(TrailEntry.seq)).all()
    assert [tuple(t) for t in trail[-2:]] == [("acknowledged", "m4", "web"),
                                              ("resolved", "m4", "web")]
    assert page.dialogs == []


def test_the_county_office_orders_and_confirms(person, server, county):
    office = person("k1")
    office.goto(f"{server.url}/alerts/{county.alert}")
    office.fill("form[data-action=order] textarea[name=note]", "请于三日内补充纸质审批记录")
    office.click("form[data-action=order] button")
    office.wait_for_url("**?done=order")
    assert status(county) == ("open", 2)
    monitor = person("m4")
    monitor.goto(f"{server.url}/queue")
    assert monitor.locator(f"tr[data-alert='{county.alert}']").count() == 1
    monitor.goto(f"{server.url}/alerts/{county.alert}")
    monitor.select_option("form[data-action=resolve] select[name=disposition]", "rectified")
    monitor.fill("form[data-action=resolve] textarea[name=note]", "已补附纸质审批记录")
    monitor.click("form[data-action=resolve] button")
    monitor.wait_for_url("**?done=resolve")
    office.goto(f"{server.url}/queue")
    row = office.locator(f"tr[data-alert='{county.alert}']")
    assert "已办结" in row.inner_text()
    office.goto(f"{server.url}/alerts/{county.alert}")
    assert office.locator("[data-actions]").get_attribute("data-actions") == \
        "order confirm reject"
    office.click("form[data-action=confirm] button")
    office.wait_for_url("**?done=confirm")
    assert status(county) == ("confirmed", 2)
    assert office.locator("[data-status]").inner_text() == "已确认"


def test_a_leader_only_reads(person, server, county):
    page = person("boss")
    assert page.locator("[data-department=D04]").count() == 1
    assert page.locator("[data-department=D07]").count() == 1
    page.goto(f"{server.url}/alerts/{county.alert}")
    assert page.locator("form.act").count() == 0
    assert "领导账户：只读" in page.locator(".actions").inner_text()
    csrf = page.locator("header input[name=csrf]").get_attribute("value")
    forged = page.request.post(f"{server.url}/alerts/{county.alert}/ack",
                               form={"csrf": csrf, "note": "x"}, max_redirects=0)
    assert forged.status == 403
    assert status(county) == ("open", 1)


def test_a_form_without_its_csrf_token_is_refused(person, server, county):
    page = person("m4")
    response = page.request.post(f"{server.url}/alerts/{county.alert}/ack",
                                 form={"note": "x"}, max_redirects=0)
    assert response.status == 403 and "表单已失效" in response.text()
    assert status(county) == ("open", 1)


def test_hostile_text_is_shown_as_text(person, server, county):
    page = person("k1")
    for path in ("/board", f"/alerts/{county.alert}", "/cases/c1"):
        page.goto(server.url + path)
        assert page.locator("script").count() == 0
        assert page.locator("img").count() == 0
    assert HOSTILE in page.locator("table.list").first.inner_text()
    page.goto(f"{server.url}/board")
    assert ("应急管理局" + HOSTILE) in page.locator("[data-department=D04]").inner_text()
    own = person("m4")
    assert HOSTILE in own.locator("[data-user]").inner_text()
    assert page.dialogs == [] and own.dialogs == []


def test_chinese_is_drawn_with_the_cjk_font(person, server, county):
    """The heading as the page draws it is the same picture as the same text set in Noto
    Sans CJK explicitly, and not a blank box: the CJK font is there and used."""
    page = person("m4")
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "h1"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cjk = [f for f in fonts if f["familyName"].startswith("Noto Sans CJK")]
    assert cjk and cjk[0]["glyphCount"] >= 2, fonts  # 总览 (and 截至) drawn by Noto Sans CJK
    heading = page.locator("h1").first
    page.evaluate("""() => {
        const h = document.querySelector('h1');
        for (const [id, family, color] of [['as-cjk', '"Noto Sans CJK SC"', ''],
                                           ['as-blank', 'inherit', 'transparent']]) {
            const copy = h.cloneNode(true);
            copy.id = id;
            copy.style.fontFamily = family;
            if (color) copy.style.color = color;
            h.after(copy);
        }
    }""")
    drawn = heading.screenshot()
    assert drawn == page.locator("#as-cjk").screenshot()
    assert drawn != page.locator("#as-blank").screenshot()
    assert heading.inner_text().startswith("总览")
