"""What every process does first: private files, quiet libraries, filtered logs."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from bot.core import process, secrets
from bot.core.privacy import PrivacyFilter


@pytest.fixture
def restore_process_state():
    """process.start() changes process-wide state: put it back after the test."""
    umask = os.umask(0o022)
    os.umask(umask)
    root = logging.getLogger()
    handlers, level, excepthook = list(root.handlers), root.level, sys.excepthook
    yield
    sys.excepthook = excepthook
    os.umask(umask)
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_start_makes_new_files_and_var_private_and_filters_logs(tmp_path, monkeypatch, restore_process_state):
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o755)
    var_dir.chmod(0o755)  # as a setup step run with the shell's umask leaves it
    monkeypatch.setenv("VAR_DIR", str(var_dir))
    monkeypatch.delenv("RASA_TELEMETRY_ENABLED", raising=False)
    secrets.ensure(var_dir)  # the setup step (bot.core.make_secrets)
    var_dir.chmod(0o755)

    settings = process.start()
    created = var_dir / "new-file"
    created.write_text("x")

    assert settings.var_dir == var_dir
    assert var_dir.stat().st_mode & 0o777 == 0o700
    assert created.stat().st_mode & 0o777 == 0o600
    assert os.environ["RASA_TELEMETRY_ENABLED"] == "false"
    assert logging.getLogger().handlers
    assert all(any(isinstance(f, PrivacyFilter) for f in h.filters) for h in logging.getLogger().handlers)


def test_a_deployers_telemetry_choice_is_kept(tmp_path, monkeypatch, restore_process_state):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("RASA_TELEMETRY_ENABLED", "true")
    secrets.ensure(tmp_path)

    process.start()

    assert os.environ["RASA_TELEMETRY_ENABLED"] == "true"
