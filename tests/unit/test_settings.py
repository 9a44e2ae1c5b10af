"""Settings read from the environment, and the database URL forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import secrets
from bot.core.secrets import MissingSecret
from bot.core.settings import REPO_ROOT, Settings, async_db_url, sync_db_url


@pytest.mark.parametrize(
    "url, sync",
    [
        ("sqlite+aiosqlite:////var/app/x.db", "sqlite:////var/app/x.db"),
        ("sqlite:////var/app/x.db", "sqlite:////var/app/x.db"),
        ("postgresql+asyncpg://u:p@db:5432/app", "postgresql+psycopg2://u:p@db:5432/app"),
        ("postgres://u:p@db/app", "postgresql+psycopg2://u:p@db/app"),
        ("postgresql://u:p@db/app", "postgresql://u:p@db/app"),
        ("postgresql+psycopg2://u:p@db/app", "postgresql+psycopg2://u:p@db/app"),
    ],
)
def test_sync_db_url_gives_the_synchronous_driver(url, sync):
    assert sync_db_url(url) == sync


@pytest.mark.parametrize(
    "url, async_",
    [
        ("sqlite:////var/app/x.db", "sqlite+aiosqlite:////var/app/x.db"),
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
        ("sqlite+aiosqlite:////var/app/x.db", "sqlite+aiosqlite:////var/app/x.db"),
        ("postgresql://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgresql+psycopg2://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgres://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgresql+asyncpg://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
    ],
)
def test_async_db_url_gives_the_asyncio_driver(url, async_):
    assert async_db_url(url) == async_


def test_the_url_conversions_leave_the_password_untouched():
    url = "postgresql://u:p%40ss%2Fw%25rd@db/app"

    assert async_db_url(url) == "postgresql+asyncpg://u:p%40ss%2Fw%25rd@db/app"
    assert sync_db_url(async_db_url(url)) == "postgresql+psycopg2://u:p%40ss%2Fw%25rd@db/app"


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The environment of a process whose secrets the setup step has made (bot.core.make_secrets)."""
    secrets.ensure(tmp_path)
    return {"VAR_DIR": str(tmp_path), **values}


def test_from_env_defaults_to_sqlite_files_under_var_dir(tmp_path):
    settings = Settings.from_env(env(tmp_path))

    assert settings.database_url == f"sqlite:///{tmp_path / 'escalations.db'}"
    assert settings.tracker_store_url == f"sqlite:///{tmp_path / 'tracker.db'}"
    assert settings.store_url == f"sqlite+aiosqlite:///{tmp_path / 'escalations.db'}"
    assert settings.spool_dir == tmp_path / "spool"


def test_from_env_has_working_defaults(tmp_path):
    settings = Settings.from_env(env(tmp_path))

    assert (settings.bind_host, settings.rasa_port, settings.action_port, settings.web_port) == (
        "127.0.0.1", 5005, 5055, 8000,
    )
    assert settings.action_server_url == "http://127.0.0.1:5055/webhook"
    assert settings.public_rasa_url == "http://127.0.0.1:5005"
    assert settings.clinic_config == REPO_ROOT / "clinic.yml"
    assert settings.redis_url == ""
    assert settings.max_message_chars == 2000
    assert settings.smtp_starttls is False
    assert settings.log_level == "INFO"


def test_from_env_derives_urls_from_the_ports(tmp_path):
    settings = Settings.from_env(env(tmp_path, RASA_PORT="6005", ACTION_PORT="6055"))

    assert settings.action_server_url == "http://127.0.0.1:6055/webhook"
    assert settings.public_rasa_url == "http://127.0.0.1:6005"


SECRETS = {"RASA_JWT_SECRET": "j", "ACTION_SERVER_SECRET": "a", "SESSION_SECRET": "s", "STAFF_BRIDGE_SECRET": "b"}


def test_from_env_resolves_a_relative_var_dir_against_the_repository():
    settings = Settings.from_env({"VAR_DIR": "var", **SECRETS})

    assert settings.var_dir == REPO_ROOT / "var"


@pytest.mark.parametrize(
    "field, file",
    [("rasa_jwt_secret", "rasa_jwt_secret"), ("action_secret", "action_secret"), ("session_secret", "session_secret"),
     ("staff_bridge_secret", "staff_bridge_secret")],
)
def test_the_setup_step_creates_each_secret_privately_once_and_settings_read_it(tmp_path, field, file):
    assert file in secrets.ensure(tmp_path)
    first = Settings.from_env({"VAR_DIR": str(tmp_path)})
    assert secrets.ensure(tmp_path) == []  # never replaced
    second = Settings.from_env({"VAR_DIR": str(tmp_path)})

    assert len(getattr(first, field)) >= 32
    assert getattr(second, field) == getattr(first, field)
    secret_file = tmp_path / "secrets" / file
    assert secret_file.read_text(encoding="utf-8") == getattr(first, field)
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert secret_file.parent.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in secret_file.parent.iterdir() if p.name.startswith(".secret-")] == []


def test_reading_settings_creates_nothing_and_a_missing_secret_says_which_step_makes_it(tmp_path):
    with pytest.raises(MissingSecret, match=r"rasa_jwt_secret .*make setup"):
        Settings.from_env({"VAR_DIR": str(tmp_path)})
    assert not (tmp_path / "secrets").exists()
    # The setup step itself reads where VAR_DIR is without any secret.
    assert Settings.from_env({"VAR_DIR": str(tmp_path)}, read_secrets=False).var_dir == tmp_path
    assert not (tmp_path / "secrets").exists()


def test_each_default_is_written_once_in_the_field_that_reads_it():
    import dataclasses

    fields = dataclasses.fields(Settings)
    names = [f.metadata["env"] for f in fields]
    assert len(names) == len(set(names))  # one field per variable
    source = (REPO_ROOT / "bot" / "core" / "settings.py").read_text(encoding="utf-8")
    # No variable is read anywhere but in its field: from_env reads them by the fields' metadata.
    for name in names:
        assert source.count(f'"{name}"') == 1, name


def test_from_env_prefers_secrets_given_in_the_environment(tmp_path):
    settings = Settings.from_env({"VAR_DIR": str(tmp_path), **SECRETS})

    secrets = (settings.rasa_jwt_secret, settings.action_secret, settings.session_secret, settings.staff_bridge_secret)
    assert secrets == ("j", "a", "s", "b")
    assert not (tmp_path / "secrets").exists()


def test_cors_origins_default_to_the_web_apps_own_origin(tmp_path):
    settings = Settings.from_env(env(tmp_path, WEB_PORT="8123"))

    assert settings.cors_origins == ("http://127.0.0.1:8123",)


def test_cors_origins_are_normalised_origins_and_refuse_a_wildcard(tmp_path):
    settings = Settings.from_env(
        env(tmp_path, CORS_ALLOWED_ORIGINS="https://WWW.Clinic.example/contact, https://clinic.example")
    )

    assert settings.cors_origins == ("https://www.clinic.example", "https://clinic.example")
    with pytest.raises(ValueError):
        Settings.from_env(env(tmp_path, CORS_ALLOWED_ORIGINS="*"))


def test_the_rasa_http_api_is_off_unless_asked_for(tmp_path):
    assert Settings.from_env(env(tmp_path)).rasa_api is False
    assert Settings.from_env(env(tmp_path, RASA_API="true")).rasa_api is True


@pytest.mark.parametrize(
    "url", ["postgresql://u:p@db/app", "postgres://u:p@db/app", "postgresql+psycopg2://u:p@db/app"]
)
def test_a_postgres_database_url_is_also_used_for_the_tracker_store(tmp_path, url):
    settings = Settings.from_env(env(tmp_path, DATABASE_URL=url))

    assert settings.tracker_store_url == url
    assert settings.store_url.startswith("postgresql+asyncpg://u:p@db/app")


def test_a_sqlite_database_url_keeps_the_tracker_store_separate(tmp_path):
    settings = Settings.from_env(env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'other.db'}"))

    assert settings.tracker_store_url == f"sqlite:///{tmp_path / 'tracker.db'}"


def test_tracker_store_url_overrides_the_database_url(tmp_path):
    settings = Settings.from_env(
        env(tmp_path, DATABASE_URL="postgresql://u:p@db/app", TRACKER_STORE_URL="postgresql://u:p@db/rasa")
    )

    assert settings.tracker_store_url == "postgresql://u:p@db/rasa"


@pytest.mark.parametrize(
    "value, expected", [("true", True), ("1", True), ("YES", True), ("false", False), ("no", False)]
)
def test_smtp_starttls_is_read_as_a_flag(tmp_path, value, expected):
    assert Settings.from_env(env(tmp_path, SMTP_STARTTLS=value)).smtp_starttls is expected


def test_log_level_is_upper_cased(tmp_path):
    assert Settings.from_env(env(tmp_path, LOG_LEVEL="debug")).log_level == "DEBUG"


#: The only places that read the environment into settings: each process's entry point.
ENTRY_POINTS = {
    "bot/core/process.py": "every process's settings (process.start / process.settings)",
    "bot/core/make_secrets.py": "the setup step that makes the secrets, before any process",
    "bot/launch.py": "the launcher, for the stack it starts",
    "bot/cluster.py": "the cluster launcher (make run-cluster), for the ports and VAR_DIR it starts from",
}


def test_settings_are_read_from_the_environment_only_at_the_entry_points():
    callers = {}
    for path in sorted([*(REPO_ROOT / "bot").rglob("*.py"), *(REPO_ROOT / "actions").rglob("*.py")]):
        count = path.read_text(encoding="utf-8").count("Settings.from_env(")
        if count and path.name != "settings.py":
            callers[str(path.relative_to(REPO_ROOT))] = count
    assert set(callers) == set(ENTRY_POINTS)
    assert callers["bot/core/process.py"] == 1
