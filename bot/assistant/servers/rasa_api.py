"""Credentials for Rasa's HTTP API (``RASA_API=true``; off by default).

Rasa's plain token is read from the ``?token=`` query string, so it ends up in
URLs, access logs and shell history. The Rasa server is therefore started with
JWT authentication only, and callers (the benchmark) send a short-lived token
signed with ``RASA_JWT_SECRET`` in the ``Authorization`` header.
"""

from __future__ import annotations

import time

import jwt

from bot.core.settings import Settings

JWT_METHOD = "HS256"
TOKEN_LIFETIME_SECONDS = 3600


def api_token(settings: Settings, username: str = "assistant", lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
    """A JWT that Rasa accepts for every API route (role ``admin``), valid for ``lifetime`` seconds."""
    now = int(time.time())
    payload = {"user": {"username": username, "role": "admin"}, "iat": now, "exp": now + lifetime}
    return jwt.encode(payload, settings.rasa_jwt_secret, algorithm=JWT_METHOD)


def auth_header(settings: Settings) -> dict[str, str]:
    """The ``Authorization`` header for a call to Rasa's HTTP API."""
    return {"Authorization": f"Bearer {api_token(settings)}"}
