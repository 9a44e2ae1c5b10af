"""Application keys shared by the web app's modules.

A leaf module, so route modules that :mod:`bot.dashboard.web.app` imports can use the keys
without importing the app factory (``bot.dashboard.web.app`` re-exports them).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic
from bot.core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CLINIC = web.AppKey("clinic", Clinic)
ENGINE = web.AppKey("engine", object)
#: Factory of ``AsyncSession`` objects on the escalation store (set while the app runs).
DB = web.AppKey("db", sessionmaker)
