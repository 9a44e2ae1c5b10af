"""Take the README screenshots of the staff dashboard: sign-in page, queue and conversation view.

Usage: ``python tests/browser/dashboard_screenshots.py [OUT_DIR]`` (default ``docs/screenshots``),
with the trained model in ``models/`` and both environments installed (``make setup``).

It starts its own assistant (Rasa, action server and web app on free loopback ports,
with a temporary ``var/``), creates a staff account with the command line, holds a few
conversations over Rasa's REST webhook (a red flag, a pregnancy question that leaves
contact details, a request for a person) and works on one case, then writes
``login.png``, ``queue.png`` and ``conversation.png`` (1280 pixels wide). Every name in
them is made up.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path

import requests
from playwright.sync_api import Page, expect, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
from bot.core.store.migrate import upgrade  # noqa: E402
from bot.launch import Stack, free_port  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.browser.dashboard import RED_FLAG  # noqa: E402
from tests.browser.dashboard import STAFF, create_account, escalation_ids, sign_in, wait_live  # noqa: E402

DESKTOP = {"width": 1280, "height": 800}
CONVERSATIONS = [
    ["I'm pregnant, can I have dry needling for my back?", "/affirm", "Maria Lopez", "phone", "020 7946 0958",
     "/affirm"],
    ["can I talk to a real person please", "/affirm", "Tom Okafor", "email", "tom.okafor@example.org", "/affirm"],
    [RED_FLAG, "it started about an hour after my appointment", "should I go to A&E?"],
]


def say(rasa_url: str, sender: str, text: str) -> None:
    reply = requests.post(f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
    reply.raise_for_status()


def settle(page: Page) -> None:
    """Let fonts and layout settle so the picture is stable."""
    page.evaluate("() => document.fonts.ready")
    page.wait_for_timeout(300)


def take(out_dir: Path) -> list[Path]:
    """Start a stack, fill it with conversations and write the three screenshots into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dashboard-shots-") as var:
        env = {**os.environ, "VAR_DIR": var, "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port()),
               "WEB_PORT": str(free_port()), "RATE_ADDRESS_PER_MINUTE": "100000",
               "URGENT_PER_ADDRESS_PER_HOUR": "100000"}
        for name in ("DATABASE_URL", "REDIS_URL", "SMTP_HOST", "NOTIFY_WEBHOOK_URL"):
            env.pop(name, None)
        stack = Stack(env=env, log_dir=Path(var) / "logs")
        upgrade(stack.settings.database_url)
        stack.start()
        try:
            stack.wait_ready(300)
            return shoot(stack, out_dir)
        finally:
            stack.stop()


def shoot(stack: Stack, out_dir: Path) -> list[Path]:
    settings = stack.settings
    rasa_url, web_url = f"http://127.0.0.1:{settings.rasa_port}", f"http://127.0.0.1:{settings.web_port}"
    create_account(stack.env, STAFF)
    senders = []
    for lines in CONVERSATIONS:
        sender = f"shot-{uuid.uuid4().hex[:10]}"
        for line in lines:
            say(rasa_url, sender, line)
        senders.append(sender)
    paths = [out_dir / name for name in ("login.png", "queue.png", "conversation.png")]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=DESKTOP, locale="en-GB", reduced_motion="reduce")
            page.goto(web_url + "/staff/login")
            expect(page.get_by_label("Username")).to_be_visible()
            settle(page)
            page.screenshot(path=str(paths[0]))

            sign_in(page, web_url)
            [first] = escalation_ids(settings.database_url, senders[0])
            page.goto(f"{web_url}/staff/escalations/{first}")
            page.get_by_role("button", name="Assign to me").click()
            page.get_by_role("button", name="Start working on it").click()
            page.goto(web_url + "/staff/")
            wait_live(page)
            settle(page)
            page.screenshot(path=str(paths[1]))

            [urgent] = escalation_ids(settings.database_url, senders[2])
            page.goto(f"{web_url}/staff/escalations/{urgent}")
            expect(page.locator(".turn.is-trigger")).to_be_visible()
            wait_live(page)
            settle(page)
            page.screenshot(path=str(paths[2]), full_page=True)
        finally:
            browser.close()
    return paths


def main(argv: list[str]) -> None:
    """Command line entry point."""
    out_dir = Path(argv[1]) if len(argv) > 1 else REPO_ROOT / "docs" / "screenshots"
    for path in take(out_dir):
        print(path)


if __name__ == "__main__":
    main(sys.argv)
