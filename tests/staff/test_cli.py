"""The accounts command line: python -m bot.dashboard.staff."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from sqlalchemy import select

from bot.core.settings import REPO_ROOT, Settings
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import AuditEvent, StaffUser
from bot.dashboard.staff import accounts
from bot.dashboard.staff.__main__ import EXIT_ERROR, EXIT_NOT_MIGRATED, main

PASSWORD = "a perfectly long password"


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(var_dir=tmp_path / "var", database_url=db_url, public_web_url="https://clinic.example.org")


@pytest.fixture
def cli(settings, monkeypatch, capsys):
    monkeypatch.delenv("STAFF_PASSWORD", raising=False)
    monkeypatch.delenv("DASHBOARD_ADMIN_PASSWORD", raising=False)

    def run(*argv: str, password: str | None = None) -> tuple[int, str, str]:
        if password is not None:
            monkeypatch.setenv("STAFF_PASSWORD", password)
        code = main(list(argv), settings)
        out, err = capsys.readouterr()
        monkeypatch.delenv("STAFF_PASSWORD", raising=False)
        return code, out, err

    return run


def query(settings, statement):
    async def go():
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                return (await session.execute(statement)).scalars().all()
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_create_user_with_the_password_from_the_environment(cli, settings):
    code, out, err = cli("create-user", "Rita", "--role", "admin", "--display-name", "Rita Jones", password=PASSWORD)

    assert code == 0, err
    assert "Created admin account 'rita' (Rita Jones)" in out
    assert PASSWORD not in out + err
    [user] = query(settings, select(StaffUser))
    assert user.role.value == "admin" and user.password_hash.startswith("$argon2id$")


def test_a_weak_or_missing_password_creates_nothing(cli, settings):
    assert cli("create-user", "rita", password="short")[0] == EXIT_ERROR
    code, _, err = cli("create-user", "rita")  # no STAFF_PASSWORD and no terminal
    assert code == EXIT_ERROR and "STAFF_PASSWORD" in err
    assert query(settings, select(StaffUser)) == []


def test_the_password_is_asked_twice_on_a_terminal(cli, settings, monkeypatch):
    answers = iter(["too short", "a perfectly long password", "a perfectly long password"])
    monkeypatch.setattr("bot.dashboard.staff.__main__.getpass.getpass", lambda prompt: next(answers))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)

    code, _, err = cli("create-user", "rita")

    assert code == 0 and "at least 12 characters" in err


def test_reset_password_generate_prints_a_one_time_password(cli, settings):
    cli("create-user", "rita", password=PASSWORD)

    code, out, _ = cli("reset-password", "rita", "--generate")

    one_time = out.split("One-time password for 'rita': ", 1)[1].split()[0]
    [user] = query(settings, select(StaffUser))
    assert code == 0 and user.must_change_password
    assert asyncio.run(accounts.verify_password(user.password_hash, one_time))


def test_disable_and_enable_a_user(cli, settings):
    cli("create-user", "ada", "--role", "admin", password=PASSWORD)
    cli("create-user", "rita", password=PASSWORD)

    assert cli("disable-user", "rita")[0] == 0
    assert cli("disable-user", "ada")[0] == EXIT_ERROR  # the only admin
    listing = cli("list-users")[1]
    assert "rita" in listing and "disabled" in listing
    assert cli("enable-user", "rita")[0] == 0
    assert all(user.disabled_at is None for user in query(settings, select(StaffUser)))
    actors = {event.actor for event in query(settings, select(AuditEvent))}
    assert len(actors) == 1 and actors.pop().startswith("cli")


def test_issue_a_token_once_and_revoke_it(cli, settings):
    cli("create-user", "rita", password=PASSWORD)

    code, out, _ = cli("issue-token", "rita", "--name", "nightly export")
    token = next(line for line in out.splitlines() if line.startswith("dnst_"))
    listing = cli("list-tokens")[1]

    assert code == 0 and "nightly export" in listing and token not in listing
    assert cli("revoke-token", "1")[0] == 0
    assert "revoked" in cli("list-tokens", "rita")[1]
    assert cli("revoke-token", "42")[0] == EXIT_ERROR


def test_unknown_users_are_an_error_not_a_crash(cli):
    code, _, err = cli("disable-user", "nobody")

    assert code == EXIT_ERROR and "no account named 'nobody'" in err


def test_ensure_admin_creates_the_first_admin_once_with_a_generated_password(cli, settings):
    code, out, _ = cli("ensure-admin")

    password = out.split("Password:", 1)[1].split()[0]
    [admin] = query(settings, select(StaffUser))
    assert code == 0 and admin.username == "admin" and admin.role.value == "admin" and admin.must_change_password
    assert "https://clinic.example.org/staff/login" in out
    assert asyncio.run(accounts.verify_password(admin.password_hash, password))
    again = cli("ensure-admin")
    assert again[0] == 0 and again[1] == ""
    assert len(query(settings, select(StaffUser))) == 1


def test_ensure_admin_takes_the_password_from_the_environment_and_still_forces_a_change(cli, settings, monkeypatch):
    monkeypatch.setenv("DASHBOARD_ADMIN_PASSWORD", "the deployers own password")

    code, out, _ = cli("ensure-admin")

    [admin] = query(settings, select(StaffUser))
    assert code == 0 and "the deployers own password" not in out
    assert admin.must_change_password, "a password from an environment file is known to more than one person"
    assert asyncio.run(accounts.verify_password(admin.password_hash, "the deployers own password"))


def test_ensure_admin_refuses_a_guessable_environment_password(cli, settings, monkeypatch):
    monkeypatch.setenv("DASHBOARD_ADMIN_PASSWORD", "password1234")

    code, _, err = cli("ensure-admin")

    assert code != 0 and "DASHBOARD_ADMIN_PASSWORD" in err and "too easy to guess" in err
    assert query(settings, select(StaffUser)) == []


def test_ensure_admin_does_nothing_when_an_admin_exists(cli, settings):
    cli("create-user", "boss", "--role", "admin", password=PASSWORD)

    assert cli("ensure-admin") == (0, "", "")
    assert [user.username for user in query(settings, select(StaffUser))] == ["boss"]


def test_an_unmigrated_store_is_reported_with_the_fix(tmp_path, capsys):
    for url in (f"sqlite:///{tmp_path / 'missing.db'}", f"sqlite:///{tmp_path / 'empty.db'}"):
        if "empty" in url:
            (tmp_path / "empty.db").touch()
        settings = Settings(var_dir=tmp_path / "var", database_url=url)
        assert main(["list-users"], settings) == EXIT_NOT_MIGRATED
        assert "make migrate" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()


def test_a_store_older_than_the_staff_tables_is_reported(tmp_path, capsys):
    from bot.core.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0002")

    assert main(["list-users"], Settings(var_dir=tmp_path / "var", database_url=url)) == EXIT_NOT_MIGRATED
    assert "older than the staff accounts" in capsys.readouterr().err


INTERPRETERS = [REPO_ROOT / ".venv" / "bin" / "python", REPO_ROOT / ".venv-web" / "bin" / "python"]


@pytest.mark.parametrize("python", INTERPRETERS, ids=lambda path: path.parent.parent.name)
def test_the_command_runs_in_both_environments(python, tmp_path, db_url):
    if not python.exists():
        pytest.skip(f"{python.parent.parent.name} is not installed here (make setup creates it)")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DATABASE_URL": db_url, "VAR_DIR": str(tmp_path / "var"),
           "STAFF_PASSWORD": PASSWORD, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}

    created = subprocess.run([str(python), "-m", "bot.dashboard.staff", "create-user", "rita"], env=env,
                             capture_output=True, text=True, timeout=120)
    listed = subprocess.run([str(python), "-m", "bot.dashboard.staff", "list-users"], env=env,
                            capture_output=True, text=True, timeout=120)

    assert created.returncode == 0, created.stderr
    assert "rita" in listed.stdout
    assert PASSWORD not in created.stdout + created.stderr + listed.stdout + listed.stderr
