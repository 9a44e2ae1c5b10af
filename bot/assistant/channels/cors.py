"""Which web pages may talk to the Rasa server from a browser: one policy for both channels.

The Rasa server runs without Rasa's app-wide CORS (``cors=None``), so this policy
is the only place that grants cross-origin access, and it grants it once:

* the REST webhook answers an allowed ``Origin`` with that origin in
  ``Access-Control-Allow-Origin`` (and a preflight with the method and header the
  webhook needs); a request from any other origin gets no grant and is refused
  with 403 (a browser would drop the answer anyway, and the patient's message
  must not be processed for a page that cannot read the reply);
* socket.io gets the same list through python-socketio's own
  ``cors_allowed_origins``, which also refuses a polling or WebSocket connection
  whose ``Origin`` is not listed.

Rasa calls ``configure_cors`` even with ``cors=None``: Sanic-Cors then answers every
``OPTIONS`` request itself, before the channel's route, with no
``Access-Control-Allow-Origin`` and a stray ``Access-Control-Allow-Credentials: true``,
so a browser's preflight for a JSON POST failed. :func:`retire_rasa_cors` makes that
leftover inert (no resources, no automatic answers); the REST channel calls it when
the server starts, so its own preflight route answers.

Credentials are never allowed (the channels use no cookies) and ``*`` is never
sent: the list comes from ``CORS_ALLOWED_ORIGINS`` (default: the web app's own
origin), which refuses ``*`` itself. Requests without an ``Origin`` header come
from servers and command-line tools, not browsers, and are not affected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional

PREFLIGHT_MAX_AGE_SECONDS = 600


def retire_rasa_cors(app: Any) -> bool:
    """Make the Sanic-Cors that Rasa's ``configure_cors`` installed answer and add nothing; whether it was there."""
    context = getattr(getattr(app, "ctx", None), "sanic_cors", None)
    if context is None:
        return False
    context.resources = []
    context.options = {**getattr(context, "options", {}), "automatic_options": False}
    return True


@dataclass(frozen=True)
class CorsPolicy:
    """The browser origins allowed to call the Rasa server's channels."""

    origins: frozenset[str]

    @classmethod
    def of(cls, origins: Iterable[str]) -> "CorsPolicy":
        """A policy for ``origins`` (``scheme://host[:port]``, compared case-insensitively)."""
        listed = frozenset(origin.strip().lower().rstrip("/") for origin in origins if origin.strip())
        if "*" in listed:
            raise ValueError("a CORS policy lists origins; '*' is not allowed")
        return cls(origins=listed)

    def allows(self, origin: Optional[str]) -> bool:
        """Whether a request carrying this ``Origin`` header may be answered."""
        return origin is None or origin.lower() in self.origins

    def grant(self, origin: Optional[str]) -> Dict[str, str]:
        """Headers for an answer to a request from ``origin`` (none for a foreign origin)."""
        headers = {"Vary": "Origin"}
        if origin is not None and origin.lower() in self.origins:
            headers["Access-Control-Allow-Origin"] = origin
        return headers

    def preflight(self, origin: Optional[str], methods: str) -> Dict[str, str]:
        """Headers for an ``OPTIONS`` preflight from ``origin`` (no grant for a foreign origin)."""
        headers = self.grant(origin)
        if "Access-Control-Allow-Origin" in headers:
            headers.update(
                {
                    "Access-Control-Allow-Methods": methods,
                    "Access-Control-Allow-Headers": "Content-Type",
                    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
                }
            )
        return headers

    def socketio_options(self) -> Dict[str, Any]:
        """The same policy as python-socketio ``AsyncServer`` arguments."""
        # A callable, not the list: python-socketio compares a list against the
        # Origin header case-sensitively, and an empty list would switch its
        # origin check off entirely.
        return {"cors_allowed_origins": self._socketio_allows, "cors_credentials": False}

    def _socketio_allows(self, origin: Optional[str], environ: Optional[Dict[str, Any]] = None) -> bool:
        return origin is not None and origin.lower() in self.origins
