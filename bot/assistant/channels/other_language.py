"""A patient message in another language, as the channels meet it.

The assistant answers in English only, and the safety screen reads English. The screen names
the language it reads a message in (:func:`bot.core.safety.screen.message_language`); for any
other language the channel guard needs to know whether the message reports a red flag in
that language's catalogue (:mod:`bot.core.safety.languages`), and whether about someone else, so
it can send the urgent guidance in that language before anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from bot.core.safety.languages import LanguageNet
from bot.core.safety.screen import message_language


@dataclass(frozen=True)
class OtherLanguage:
    """A message in a language other than English, and the red flags it reports in it."""

    language: str
    red_flag_classes: tuple[str, ...] = ()
    third_party: bool = False

    @property
    def reports_red_flag(self) -> bool:
        return bool(self.red_flag_classes)

    @property
    def urgent_reply_key(self) -> str:
        """The catalogue's reply for this red flag: about the writer, or about someone else."""
        return "emergency_third_party" if self.third_party else "emergency"


def other_language(net: LanguageNet, text: str) -> Optional[OtherLanguage]:
    """``None`` for a message read as English; else its language and the red flags it reports."""
    language = message_language(text)
    if language == "en":
        return None
    reports = [finding for finding in net.findings(text, language) if finding.is_report]
    return OtherLanguage(
        language=language,
        red_flag_classes=tuple(sorted({finding.red_flag_class for finding in reports})),
        third_party=any(finding.third_party for finding in reports),
    )
