"""Screenshots of every page with the demo data, for the README: `python -m tools.screenshots`.

Starts `streamlit run app.py` on a free loopback port against a fresh demo database and demo
metrics under var/screenshots/, opens every page as the admin persona in zh-CN (and the board
as the executive) in Debian's Chromium, and writes docs/screenshots/<page>.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from core.config import PROJECT_ROOT
from tests.browser.conftest import CHROMIUM_ARGS, _free_port, save_screenshot, wait_for_app_idle
from ui.navigation import PAGES

OUT = PROJECT_ROOT / "docs" / "screenshots"
WORK = PROJECT_ROOT / "var" / "screenshots"


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, COMPUTELOOP_DATABASE_URL=f"sqlite:///{WORK / 'portal.db'}",
               COMPUTELOOP_METRICS_DIR=str(WORK / "samples"), COMPUTELOOP_AUTH="demo")
    for cmd in (["db", "upgrade"], ["demo", "seed"], ["demo", "metrics", "--days", "62", "--step", "900"],
                ["demo", "history"],
                ["demo", "board"]):
        subprocess.run([sys.executable, "-m", "core", *cmd], cwd=PROJECT_ROOT, env=env, check=True)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                               "--server.address", "127.0.0.1", "--server.port", str(port),
                               "--browser.gatherUsageStats", "false"], cwd=PROJECT_ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            for spec in PAGES.values():
                persona = "wang.qiang" if spec.key == "board" else "zhao.min"
                path = "" if spec.key == "home" else spec.url_path
                page = context.new_page()
                page.goto(f"{base}/{path}?persona={persona}&lang=zh-CN")
                wait_for_app_idle(page)
                save_screenshot(page, OUT / f"{spec.key}.png")
                page.close()
                print(f"docs/screenshots/{spec.key}.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
