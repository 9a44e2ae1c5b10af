"""Reception display accounts from the command line: created like any other, never given an API token."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.store.models import ApiToken, StaffRole, StaffUser
from tests.staff.test_cli import PASSWORD, cli, query, settings  # noqa: F401 - the fixtures

__all__ = ["cli", "settings"]


def test_create_a_reception_account(cli, settings):
    code, out, err = cli("create-user", "frontdesk", "--role", "reception", "--display-name", "Front desk",
                         password=PASSWORD)

    assert code == 0, err
    assert "Created reception account 'frontdesk' (Front desk)" in out
    [user] = query(settings, select(StaffUser))
    assert user.role == StaffRole.reception


def test_list_users_shows_the_reception_role_in_its_column(cli):
    cli("create-user", "frontdesk", "--role", "reception", password=PASSWORD)

    code, out, _ = cli("list-users")

    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("frontdesk"))
    assert line.split()[1:3] == ["reception", "enabled"]


def test_a_reception_account_gets_no_api_token(cli, settings):
    cli("create-user", "frontdesk", "--role", "reception", password=PASSWORD)

    code, out, err = cli("issue-token", "frontdesk", "--name", "script")

    assert code != 0
    assert "reception display account" in err
    assert query(settings, select(ApiToken)) == []
