"""What each of the three processes does first, before it reads or writes anything.

* ``umask 0o077``: everything the process creates under ``var/`` (SQLite
  files, spool, generated endpoints, secrets, logs) is private to the service
  user, whatever the shell or service manager set; ``var/`` itself is 0700.
* Logging goes through :mod:`bot.core.privacy` on every handler.
* Rasa's telemetry is off unless a deployer turns it on explicitly: a clinic's
  assistant sends nothing about its use to third parties by default.
"""

from __future__ import annotations

import os

from bot.core import privacy
from bot.core.files import private_directory
from bot.core.settings import Settings

PRIVATE_UMASK = 0o077

QUIET_LIBRARIES = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
}


def start() -> Settings:
    """Private file mode, library defaults and filtered logging; returns the process settings."""
    os.umask(PRIVATE_UMASK)
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)
    settings = Settings.from_env()
    privacy.configure(settings.log_level)
    private_directory(settings.var_dir)
    return settings
