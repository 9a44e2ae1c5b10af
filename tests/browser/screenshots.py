"""Take the README screenshots of the chat widget from a running demo page.

Usage: ``python tests/browser/screenshots.py [URL] [OUT_DIR]`` with the assistant running
(``make run``); the defaults are ``http://127.0.0.1:8000/`` and ``docs/screenshots``.
Writes ``widget-desktop.png`` (1280x800, a short conversation) and ``widget-phone.png``
(375x667, the greeting).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - the test fixtures' browser settings


def _open_and_wait_for_greeting(page: Page, url: str) -> None:
    page.goto(url)
    page.locator(".cw-launcher").click()
    expect(page.locator(".cw-replies .cw-reply").first).to_be_visible(timeout=30_000)


def _settle(page: Page) -> None:
    """Wait for animations (panel, typing dots) to finish so the picture is stable."""
    page.wait_for_timeout(400)
    page.locator(".cw-panel").evaluate("p => Promise.all(p.getAnimations().map(a => a.finished))")


def take(url: str, out_dir: Path) -> list[Path]:
    """Write the desktop and phone screenshots of the demo page at ``url`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    desktop, phone = out_dir / "widget-desktop.png", out_dir / "widget-phone.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-GB", reduced_motion="reduce")
            _open_and_wait_for_greeting(page, url)
            page.get_by_role("button", name="Does it hurt?").click()
            expect(page.locator(".cw-bot").last.locator(".cw-bubble")).to_contain_text(
                re.compile(r"pain|needle|twitch|ache", re.IGNORECASE), timeout=30_000
            )
            expect(page.locator(".cw-typing")).to_be_hidden(timeout=30_000)
            page.locator(".cw-user").last.evaluate(  # frame the question and its answer
                "row => { const log = row.parentNode; log.scrollTop = row.offsetTop - log.offsetTop - 12; }"
            )
            _settle(page)
            page.screenshot(path=str(desktop))

            page = browser.new_page(
                viewport={"width": 375, "height": 667}, device_scale_factor=2, locale="en-GB", reduced_motion="reduce"
            )
            _open_and_wait_for_greeting(page, url)
            _settle(page)
            page.screenshot(path=str(phone))
        finally:
            browser.close()
    return [desktop, phone]


def main(argv: list[str]) -> None:
    """Command line entry point."""
    url = argv[1] if len(argv) > 1 else "http://127.0.0.1:8000/"
    out_dir = Path(argv[2]) if len(argv) > 2 else REPO_ROOT / "docs" / "screenshots"
    for path in take(url, out_dir):
        print(path)


if __name__ == "__main__":
    main(sys.argv)
