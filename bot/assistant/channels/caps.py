"""Size caps on what a patient-facing channel accepts, and the metadata check both use.

Rasa keeps every message, its sender id and its metadata in the tracker store
for the life of the conversation, so nothing a client sends may be unbounded:

* a request body (REST) or Engine.IO packet (socket.io) is at most
  :data:`MAX_REQUEST_BYTES`: ample for ``MAX_MESSAGE_CHARS`` of text written
  entirely in JSON ``\\u`` escapes plus metadata, and far below python-engineio's
  default of 1 MB;
* a sender id is at most :data:`MAX_SENDER_CHARS` characters;
* metadata, serialised as JSON, is at most :data:`MAX_METADATA_BYTES`;
* message text is cut at ``MAX_MESSAGE_CHARS`` by :func:`bot.assistant.channels.text_input.clean_text`.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

MAX_REQUEST_BYTES = 64 * 1024
MAX_SENDER_CHARS = 128
MAX_METADATA_BYTES = 8 * 1024


def parse_metadata(raw: Any) -> Optional[Dict[str, Any]]:
    """Message metadata as a JSON object.

    Args:
        raw: the ``metadata`` field as received: an object, a JSON string of one
            (Rasa's socket.io clients may send either), or anything else.

    Returns:
        The object; ``{}`` when absent or not an object; ``None`` when larger than
        :data:`MAX_METADATA_BYTES`.
    """
    if isinstance(raw, (str, bytes)):
        if len(raw) > MAX_METADATA_BYTES:
            return None
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}
    if not isinstance(raw, dict):
        return {}
    try:
        size = len(json.dumps(raw, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError):
        return {}
    return raw if size <= MAX_METADATA_BYTES else None
