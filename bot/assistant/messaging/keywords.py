"""SMS keywords (STOP, START, HELP and their synonyms), recognised before the assistant reads a text.

A keyword is the whole message, in any case, with surrounding spaces and punctuation
ignored: "Stop." opts out, "please stop sending me the form" is an ordinary message.
The words themselves are data (``data/sms.yml``).
"""

from __future__ import annotations

import re
from typing import Mapping, Optional

OPT_OUT = "opt_out"
OPT_IN = "opt_in"
HELP = "help"

_EDGES = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)


def keyword_of(text: Optional[str], keywords: Mapping[str, frozenset[str]]) -> Optional[str]:
    """The kind of keyword ``text`` is (``opt_out``, ``opt_in``, ``help``), or ``None``."""
    if not text:
        return None
    word = _EDGES.sub("", text.strip()).upper()
    if not word or " " in word:
        return None
    for kind, words in keywords.items():
        if word in words:
            return kind
    return None
