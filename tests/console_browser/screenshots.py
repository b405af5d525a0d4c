"""Screenshots of the operator console for the README, taken in a real Chromium:

    .venv/bin/python -m tests.console_browser.screenshots docs

starts the flagship exhibit (simulated sensors, its embedded broker, the console on a free port),
signs in as an operator, presses GO once so the playhead has moved, and writes ``console-en.png``
and ``console-zh.png`` (the Show tab at a 10-inch tablet's 1280x800) into the folder given.
``--all`` also writes every other tab in both languages (``console-en-health.png``...).
Needs Debian's ``chromium`` and the ``playwright`` package; downloads nothing.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.console_browser.conftest import CHROMIUM_ARGS, TABLET, add_user, chromium_path, launch_console
from tests.support.net import free_port

TABS = ("show", "safety", "health", "site", "analytics", "signals", "visitors", "log", "audit")
PLOTTED = ["controls.wash", "body.nearest.hands_raised", "lanterns.brightness", "body.count"]


def sign_in(page: Any, user: str, password: str) -> None:
    page.goto("/")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#conn-dot.online")
    page.wait_for_selector(".cuelist .cue")


def set_language(page: Any, lang: str) -> None:
    if page.evaluate("document.documentElement.lang").startswith("zh") != (lang == "zh"):
        page.click("#app .lang-switch")
    page.wait_for_function("wanted => document.documentElement.lang.startsWith(wanted)", arg=lang)
    page.evaluate("document.fonts.ready")


def shoot(page: Any, tab: str, path: Path) -> None:
    page.click(f".tab[data-tab={tab}]")
    if tab == "signals":
        page.wait_for_selector(".signal-list li")
        page.wait_for_timeout(3000)  # let the plots fill a little
    elif tab == "visitors":
        page.wait_for_timeout(1500)
    else:
        page.wait_for_timeout(400)
    page.screenshot(path=str(path))
    print(f"wrote {path}")


def take(out: Path, every_tab: bool) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        accounts = Path(folder) / "accounts.json"
        password = secrets.token_urlsafe(12)
        add_user(accounts, "operator", "operator", password)
        console = launch_console(
            "canal-lanterns", None, accounts, Path(folder) / "audit.log", "--embedded-port", str(free_port())
        )
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
                context = browser.new_context(viewport=TABLET, base_url=console.url, locale="en-US")
                page = context.new_page()
                # a few signals chosen on the Signals tab, as an operator would have left it
                page.add_init_script(
                    f"localStorage.setItem('exhibit.console.signals', {json.dumps(json.dumps(PLOTTED))})"
                )
                sign_in(page, "operator", password)
                page.click("button.go")  # cue 1 fires: the playhead stands on cue 2
                page.wait_for_selector(".cue.standby[data-cue='2']")
                page.wait_for_timeout(1500)
                for lang in ("en", "zh"):
                    set_language(page, lang)
                    shoot(page, "show", out / f"console-{lang}.png")
                    if every_tab:
                        for tab in TABS[1:]:
                            shoot(page, tab, out / f"console-{lang}-{tab}.png")
                    page.click(".tab[data-tab=show]")
                browser.close()
        finally:
            console.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshots of the console in English and Chinese.")
    parser.add_argument("out", type=Path, help="folder for console-en.png and console-zh.png (docs)")
    parser.add_argument("--all", action="store_true", help="every tab, not only Show")
    args = parser.parse_args()
    try:
        take(args.out, args.all)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
