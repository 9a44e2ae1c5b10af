"""Rasa's endpoints configuration derived from the settings."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from bot.assistant.runtime import ACTION_SECRET_HEADER, endpoints, lock_store, newest_model, tracker_store, write_endpoints
from bot.core import secrets
from bot.core.settings import Settings


def test_tracker_store_for_sqlite_uses_the_file_and_creates_its_folder(tmp_path):
    path = tmp_path / "nested" / "tracker.db"

    config = tracker_store(f"sqlite:///{path}")

    assert config == {"type": "SQL", "dialect": "sqlite", "db": str(path)}
    assert path.parent.is_dir()


def test_tracker_store_accepts_the_async_sqlite_form(tmp_path):
    assert tracker_store(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")["db"] == str(tmp_path / "t.db")


def test_tracker_store_for_postgres_splits_the_url():
    config = tracker_store("postgresql://rasa:secret@db.internal:5433/conversations")

    assert config == {
        "type": "SQL",
        "dialect": "postgresql",
        "url": "db.internal",
        "db": "conversations",
        "port": 5433,
        "username": "rasa",
        "password": "secret",
    }


def test_tracker_store_accepts_the_postgres_scheme_variants():
    for url in ("postgres://u:p@db/app", "postgresql+asyncpg://u:p@db/app", "postgresql+psycopg2://u:p@db/app"):
        config = tracker_store(url)
        assert (config["dialect"], config["url"], config["db"]) == ("postgresql", "db", "app")


def test_tracker_store_without_a_port_leaves_it_out():
    assert "port" not in tracker_store("postgresql://u:p@db/app")


def test_tracker_store_decodes_a_password_with_special_characters():
    password = "p@ss:w/rd#?"

    config = tracker_store(f"postgresql://rasa:{quote(password, safe='')}@db/app")

    assert config["password"] == password


def test_tracker_store_keeps_a_password_that_contains_a_percent_sequence():
    password = "100%25sure%20"

    config = tracker_store(f"postgresql://rasa:{quote(password, safe='')}@db/app")

    assert config["password"] == password


def test_tracker_store_decodes_a_username_with_special_characters():
    assert tracker_store("postgresql://rasa%40clinic:p@db/app")["username"] == "rasa@clinic"


def test_lock_store_reads_a_redis_url():
    assert lock_store("redis://:s3cret@redis.internal:6380/2") == {
        "type": "redis",
        "url": "redis.internal",
        "port": 6380,
        "db": 2,
        "key_prefix": "dry_needling",
        "use_ssl": False,
        "password": "s3cret",
    }


def test_lock_store_defaults_port_and_database():
    config = lock_store("redis://localhost")

    assert (config["url"], config["port"], config["db"]) == ("localhost", 6379, 1)
    assert "password" not in config


def test_lock_store_uses_ssl_for_rediss():
    config = lock_store("rediss://:pw@redis.example:6380/0")

    assert config["use_ssl"] is True
    assert (config["url"], config["port"], config["db"]) == ("redis.example", 6380, 0)


def test_lock_store_decodes_a_password_with_special_characters():
    password = "p@ss:w/rd"

    assert lock_store(f"redis://:{quote(password, safe='')}@redis:6379/1")["password"] == password


def test_lock_store_keeps_a_password_that_contains_a_percent_sequence():
    password = "100%25sure%20"

    assert lock_store(f"redis://:{quote(password, safe='')}@redis:6379/1")["password"] == password


def settings(tmp_path: Path, **changes) -> Settings:
    return Settings(
        var_dir=tmp_path,
        clinic_config=tmp_path / "clinic.yml",
        tracker_store_url=f"sqlite:///{tmp_path / 'tracker.db'}",
        action_server_url="http://127.0.0.1:5055/webhook",
        **changes,
    )


def test_endpoints_without_redis_has_no_lock_store(tmp_path):
    config = endpoints(settings(tmp_path))

    assert "lock_store" not in config
    assert config["action_endpoint"]["url"] == "http://127.0.0.1:5055/webhook"
    assert config["tracker_store"]["dialect"] == "sqlite"
    assert config["nlg"] == {"type": "bot.assistant.nlg.ClinicNLG", "clinic_config": str(tmp_path / "clinic.yml")}


def test_endpoints_with_redis_has_a_lock_store(tmp_path):
    config = endpoints(settings(tmp_path, redis_url="redis://redis:6379/3"))

    assert config["lock_store"]["type"] == "redis"
    assert config["lock_store"]["db"] == 3


def test_endpoints_follow_a_postgres_database_url(tmp_path):
    env = {
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": "postgresql://rasa:pw@db:5432/app",
        "RASA_TOKEN": "t",
        "SESSION_SECRET": "s",
    }

    secrets.ensure(tmp_path)
    config = endpoints(Settings.from_env(env))

    assert (config["tracker_store"]["dialect"], config["tracker_store"]["url"]) == ("postgresql", "db")


def test_write_endpoints_writes_a_private_yaml_file(tmp_path):
    with_redis = settings(tmp_path, redis_url="redis://redis:6379/3")

    path = write_endpoints(with_redis)

    assert path == tmp_path / "runtime" / "endpoints.yml"
    assert path.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == endpoints(with_redis)


def test_rasa_sends_the_action_secret_in_a_header(tmp_path):
    config = endpoints(settings(tmp_path, action_secret="shared-secret"))

    assert config["action_endpoint"]["headers"] == {ACTION_SECRET_HEADER: "shared-secret"}
    assert "shared-secret" not in config["action_endpoint"]["url"]


def test_newest_model_is_the_latest_archive(tmp_path):
    old, new = tmp_path / "old.tar.gz", tmp_path / "new.tar.gz"
    old.write_bytes(b"")
    new.write_bytes(b"")
    os.utime(old, (1, 1))

    assert newest_model(tmp_path) == new


def test_newest_model_without_any_archive_says_how_to_train(tmp_path):
    with pytest.raises(FileNotFoundError, match="make train"):
        newest_model(tmp_path)
