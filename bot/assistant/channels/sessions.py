"""Conversation ids the server issues and signs, so a browser can resume only its own.

A socket.io conversation is identified by the session id in ``session_confirm``,
which Rasa also uses as the tracker's sender id. The server never accepts an id
a client made up: it issues ``<nonce>.<signature>``, a random nonce with its
HMAC-SHA256 under ``SESSION_SECRET``. Standard clients (rasa-webchat,
socket.io-client code, the project's widget) store that id and send it back in
``session_request``, so a returning patient resumes with no change to Rasa's wire
format, while a foreign, guessed or tampered id fails verification and gets a new
conversation instead. Whoever holds a token holds the conversation, which is why
ids are only ever logged shortened.

The token's shape is reserved: the REST channel refuses sender ids of this shape,
so a REST caller cannot write into a browser's conversation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

NONCE_BYTES = 16
SIGNATURE_BYTES = 16
_LABEL = b"socketio-session:"
_B64 = r"[A-Za-z0-9_-]"
TOKEN_SHAPE = re.compile(rf"{_B64}{{22}}\.{_B64}{{22}}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def is_session_shaped(value: Any) -> bool:
    """Whether ``value`` has the reserved form of a socket.io session id (signed or not)."""
    return isinstance(value, str) and TOKEN_SHAPE.fullmatch(value) is not None


class SessionTokens:
    """Issues and verifies signed session ids."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a session secret is required (SESSION_SECRET or var/secrets/session_secret)")
        self._key = secret.encode("utf-8")

    def _sign(self, nonce: str) -> str:
        digest = hmac.new(self._key, _LABEL + nonce.encode("ascii"), hashlib.sha256).digest()
        return _b64(digest[:SIGNATURE_BYTES])

    def issue(self) -> str:
        """A new session id: a random nonce and its signature."""
        nonce = _b64(secrets.token_bytes(NONCE_BYTES))
        return f"{nonce}.{self._sign(nonce)}"

    def verify(self, token: Any) -> bool:
        """Whether ``token`` is a session id this server issued (constant-time comparison)."""
        if not is_session_shaped(token):
            return False
        nonce, signature = token.split(".")
        return hmac.compare_digest(signature, self._sign(nonce))
