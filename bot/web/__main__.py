"""Run the web app: ``python -m bot.web`` (private files, filtered logs, on ``BIND_HOST``/``WEB_PORT``)."""

from __future__ import annotations

from aiohttp import web

from bot import process
from bot.web.app import create_app

if __name__ == "__main__":
    settings = process.start()
    web.run_app(create_app(settings), host=settings.bind_host, port=settings.web_port, access_log=None)
