"""The README's screenshots, taken with the browser tests' own tooling on the demo county:
``python tests/screenshot_demo.py docs/`` builds the demo in a scratch folder, serves the
control center on 127.0.0.1 (its clock at the demo's first morning after the audit), signs
in as the county office in headless Chromium and saves the board and an alert page."""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright  # noqa: E402

from monitor.db import open_store  # noqa: E402
from monitor.demo import run_demo  # noqa: E402
from monitor.demo.logins import demo_logins  # noqa: E402
from monitor.web import create_app  # noqa: E402
from web_county import BROWSER_ARGS, CHROMIUM, Server, clock  # noqa: E402

MORNING = datetime(2026, 2, 2, 1, 0, tzinfo=timezone.utc)  # 09:00 local


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="permit-monitor-shots-") as folder:
        demo = run_demo(Path(folder) / "demo", seed=2025, cases=5000, now=MORNING)
        _, password = demo_logins(demo.database_url, MORNING)
        engine = open_store(demo.database_url)
        server = Server(create_app(engine, demo_config(demo), clock(MORNING))).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")
                page.goto(f"{server.url}/login")
                page.fill("input[name=user_id]", "jw-monitor-1")
                page.fill("input[name=password]", password)
                page.click("form[action='/login'] button[type=submit]")
                page.wait_for_url("**/board")
                page.screenshot(path=str(out / "web-board.png"))
                page.goto(f"{server.url}/alerts/4")
                page.screenshot(path=str(out / "web-alert.png"), full_page=True)
                browser.close()
        finally:
            server.stop()
            engine.dispose()


def demo_config(demo):
    from monitor.config import Config
    from monitor.config import SHIPPED_RULES

    return Config(path=None, base_dir=demo.directory, rules_dir=SHIPPED_RULES)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
