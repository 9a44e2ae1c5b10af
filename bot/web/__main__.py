"""Run the web app: ``python -m bot.web``."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.settings import Settings
from bot.web.app import create_app

if __name__ == "__main__":
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    web.run_app(create_app(settings), host=settings.bind_host, port=settings.web_port, access_log=None)
