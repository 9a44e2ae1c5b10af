"""The staff dashboard as staff see it, for browser tests and the README screenshots.

Accounts are made with the real command line (``python -m bot.dashboard.staff create-user`` on
the web app's interpreter) against the stack's own store; pages are driven the way a
person uses them: labels, buttons and headings, not CSS selectors, wherever possible.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.core.settings import sync_db_url
from bot.core.store.models import Escalation
from bot.launch import web_python

RED_FLAG = "since my needling this morning i cant catch my breath and my chest hurts"


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    display_name: str
    role: str = "staff"


STAFF = Account("pat.physio", "a long test password for pat", "Pat Physio")
COLLEAGUE = Account("robin.reception", "a long test password for robin", "Robin Reception")


def create_account(env: Mapping[str, str], account: Account) -> None:
    """Create ``account`` in the store the environment points at (nothing if it exists already)."""
    command = [web_python(env), "-m", "bot.dashboard.staff", "create-user", account.username, "--role", account.role,
               "--display-name", account.display_name]
    done = subprocess.run(command, env={**env, "STAFF_PASSWORD": account.password}, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0 and "already exists" not in done.stderr:
        raise RuntimeError(f"could not create {account.username}: {done.stderr.strip()}")


@pytest.fixture(scope="module")
def staff_accounts(live_stack):
    """The live stack, with two staff accounts in its store (import this fixture into a test module)."""
    for account in (STAFF, COLLEAGUE):
        create_account(live_stack.stack.env, account)
    return live_stack


def red_flag_case(live_stack, sender: str) -> str:
    """A red-flag conversation over Rasa's REST webhook; returns the escalation's id once stored."""
    from tests.conftest import wait_for

    live_stack.say(sender, RED_FLAG)
    [case_id] = wait_for(lambda: escalation_ids(live_stack.database_url, sender))
    return case_id


def sign_in(page: Page, web_url: str, account: Account = STAFF, path: str = "/staff/") -> None:
    """Sign in through the form (from ``path``, which sends an anonymous visitor to it)."""
    page.goto(web_url + path)
    expect(page.get_by_role("heading", name="Sign in to the staff dashboard")).to_be_visible()
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def wait_live(page: Page) -> None:
    """Wait until the page's event stream is open."""
    expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "live")


def escalation_ids(database_url: str, sender: str) -> list[str]:
    """The ids of a conversation's escalations, oldest first."""
    engine = create_engine(sync_db_url(database_url), future=True)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Escalation.id).where(Escalation.sender_id == sender).order_by(Escalation.created_at)
            )
            return list(rows.scalars())
    finally:
        engine.dispose()
