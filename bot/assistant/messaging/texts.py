"""The SMS channel's keywords, texts and limits, loaded from ``data/sms.yml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from bot.core.clinic import Clinic
from bot.core.settings import REPO_ROOT

DEFAULT_PATH = REPO_ROOT / "data" / "sms.yml"
KEYWORD_KINDS = ("opt_out", "opt_in", "help")
TEXTS = (
    "first_contact", "opted_out", "opted_in", "help", "media_only", "media_ignored", "daily_cap", "more_offer",
    "more_offer_short", "urgent_disclosure",
)
#: Why a text got no automated answer (the reasons the channel records; their staff-facing words in ``unanswered``).
UNANSWERED = ("opted_out", "rate_limited")


class SmsConfigError(ValueError):
    """``data/sms.yml`` is missing a keyword list, a text or a limit."""


@dataclass(frozen=True)
class SmsTexts:
    """Keywords (upper case) per kind, the channel's own texts, and its limits."""

    keywords: Mapping[str, frozenset[str]]
    texts: Mapping[str, str]
    part_chars: int = 320
    choices_valid_minutes: int = 60
    #: Whole messages that ask for the full answer after a short one (bot/assistant/messaging/more.py).
    more: frozenset[str] = frozenset()
    #: Most segments an FAQ answer by text may take, its MORE offer included.
    answer_segments: int = 2
    #: Staff-facing explanation per reason a text got no automated answer.
    unanswered: Mapping[str, str] = field(default_factory=dict)

    def render(self, name: str, clinic: Clinic) -> str:
        """Text ``name`` with the clinic's facts filled in, on one line."""
        values = {
            "clinic_name": clinic.name,
            "clinic_phone": clinic.phone,
            "emergency_number": clinic.emergency_number,
        }
        return " ".join(self.texts[name].format(**values).split())


def load_texts(path: Path = DEFAULT_PATH) -> SmsTexts:
    """Read and check the SMS channel's data file."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SmsConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise SmsConfigError(f"{path}: expected a mapping")
    keywords = raw.get("keywords") or {}
    texts = raw.get("texts") or {}
    limits = raw.get("limits") or {}
    missing = [f"keywords.{k}" for k in KEYWORD_KINDS if not keywords.get(k)]
    missing += [f"texts.{t}" for t in TEXTS if not isinstance(texts.get(t), str) or not texts[t].strip()]
    more = raw.get("more") or []
    if not isinstance(more, list) or not [phrase for phrase in more if str(phrase).strip()]:
        missing.append("more")
    unanswered = raw.get("unanswered") or {}
    missing += [f"unanswered.{r}" for r in UNANSWERED if not isinstance(unanswered.get(r), str) or not unanswered[r].strip()]
    if missing:
        raise SmsConfigError(f"{path}: missing {', '.join(missing)}")
    seen: dict[str, str] = {}
    for kind in KEYWORD_KINDS:
        for word in keywords[kind]:
            word = str(word).strip().upper()
            if word in seen and seen[word] != kind:
                raise SmsConfigError(f"{path}: keyword {word} is both {seen[word]} and {kind}")
            seen[word] = kind
    part_chars = int(limits.get("part_chars", 320))
    if not 60 <= part_chars <= 1600:
        raise SmsConfigError(f"{path}: limits.part_chars must be between 60 and 1600")
    return SmsTexts(
        keywords={kind: frozenset(str(w).strip().upper() for w in keywords[kind]) for kind in KEYWORD_KINDS},
        texts={name: str(texts[name]) for name in TEXTS},
        part_chars=part_chars,
        choices_valid_minutes=int(limits.get("choices_valid_minutes", 60)),
        more=frozenset(str(phrase).strip() for phrase in more if str(phrase).strip()),
        answer_segments=int(limits.get("answer_segments", 2)),
        unanswered={reason: " ".join(str(unanswered[reason]).split()) for reason in UNANSWERED},
    )
