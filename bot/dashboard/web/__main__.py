"""Run the web app: ``python -m bot.dashboard.web`` (private files, filtered logs, on ``BIND_HOST``/``WEB_PORT``)."""

from __future__ import annotations

from aiohttp import web

from bot.core import process
from bot.dashboard.web.app import create_app

if __name__ == "__main__":
    settings = process.start()
    web.run_app(create_app(settings), host=settings.bind_host, port=settings.web_port, access_log=None)
