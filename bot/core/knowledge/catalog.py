"""The curated knowledge base: answers with their sources, loaded and checked in one place.

Answers are Rasa responses in ``data/responses/*.yml``; each carries
``metadata.kb`` (version, last-reviewed date, source ids, a short evidence note
for staff, and a button title for FAQ topics). FAQ answers also carry a ``short``
version that fits one text message (:func:`short_answers`) and cite a UK source or say
why none exists (``no_uk_source``). Sources are catalogued in
``bot/core/knowledge/sources.yml``, UK ones marked ``uk: true`` and ones kept only for older
answers marked ``weak`` with the reason. :func:`load` reads both and :func:`problems`
lists everything a reviewer must fix before the answers go live.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Optional

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
RESPONSES_DIR = REPO_ROOT / "data" / "responses"
SOURCES_FILE = Path(__file__).with_name("sources.yml")
DOMAIN_FILE = REPO_ROOT / "domain.yml"
FAQ_PREFIX = "utter_faq/"
PLACEHOLDERS = {
    "clinic_name", "clinic_phone", "clinic_email", "clinic_address", "booking_url",
    "emergency_number", "urgent_care", "price_info", "opening_hours",
}
# The longest short version (issue 21's "one SMS"): phones show it as one message, though
# over 160 plain (GSM-7) characters it travels as two or three joined segments.
SHORT_MAX_CHARS = 320
# A curated answer not reviewed for this long is out of date: the checks fail until a
# clinician reviews it again (hazard H19 in docs/clinical-safety.md).
REVIEW_INTERVAL_DAYS = 365
# Statements the fact sheet says must never be made (see shared/facts, "must not say").
FORBIDDEN = [
    (re.compile(r"\b210\b|24[,.]?000"), "unverified '210 studies / 24,000 patients' figure"),
    (re.compile(r"\b80\s?%|\b50\s?%\s+longer"), "unsourced '80% / 50%' relief figures"),
    (re.compile(r"stop (taking|your)\b.*(medic|thinner|warfarin|anticoag)", re.I), "advice to stop medication"),
    (re.compile(r"flush|toxin", re.I), "'flush out toxins' aftercare myth"),
    (re.compile(r"younger than 12|under 12", re.I), "unconfirmed APTA age claim"),
    (re.compile(r"covered by most", re.I), "claim that most insurance covers it"),
    (
        re.compile(r"\b(you are|you're|you'll be|you should be) (fine|ok|okay|safe to)\b|\bsafe for you\b", re.I),
        "telling a patient they are fine",
    ),
]


@dataclass(frozen=True)
class Source:
    """One entry of the source catalogue."""

    id: str
    citation: str
    url: str
    grade: str
    #: A UK source (professional body, NICE, NHS).
    uk: bool = False
    #: Why the source must not back a patient-education answer any more (empty: it may).
    weak: str = ""
    #: The short name patients see beside an answer ("NICE NG193"); FAQ answers' sources need one.
    name: str = ""


@dataclass(frozen=True)
class Answer:
    """A curated answer and what it rests on."""

    name: str
    text: str
    version: int
    reviewed: Optional[date]
    sources: tuple[str, ...]
    evidence: str = ""
    title: str = ""
    follow_up: str = ""
    file: str = ""
    #: The answer in one text message (FAQ answers).
    short: str = ""
    #: Why the answer cites no UK source, where none exists.
    no_uk_source: str = ""

    @property
    def topic(self) -> Optional[str]:
        """The ``faq`` sub-intent, e.g. ``does_it_hurt``, for FAQ answers."""
        return self.name[len(FAQ_PREFIX):] if self.name.startswith(FAQ_PREFIX) else None


@dataclass
class KnowledgeBase:
    """All curated answers and sources."""

    answers: dict[str, Answer] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    domain_responses: set[str] = field(default_factory=set)

    @property
    def faq(self) -> dict[str, Answer]:
        """FAQ answers by topic."""
        return {a.topic: a for a in self.answers.values() if a.topic}

    def title(self, topic: str) -> str:
        """Button title for an FAQ topic."""
        answer = self.faq.get(topic)
        return answer.title if answer and answer.title else topic.replace("_", " ").capitalize()


def _as_date(value: object) -> Optional[date]:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def load_sources(sources_file: Path = SOURCES_FILE) -> dict[str, Source]:
    """The source catalogue alone, by id."""
    raw_sources = yaml.safe_load(sources_file.read_text(encoding="utf-8"))["sources"]
    return {
        source_id: Source(
            id=source_id, citation=entry.get("citation", ""), url=entry.get("url", ""), grade=entry.get("grade", ""),
            uk=bool(entry.get("uk", False)), weak=str(entry.get("weak", "") or ""),
            name=" ".join(str(entry.get("name", "") or "").split()),
        )
        for source_id, entry in raw_sources.items()
    }


def load(
    responses_dir: Path = RESPONSES_DIR, sources_file: Path = SOURCES_FILE, domain_file: Path = DOMAIN_FILE
) -> KnowledgeBase:
    """Read every curated answer, the source catalogue and the domain's response names."""
    kb = KnowledgeBase()
    kb.domain_responses = set((yaml.safe_load(domain_file.read_text(encoding="utf-8")) or {}).get("responses") or {})
    kb.sources = load_sources(sources_file)
    for path in sorted(responses_dir.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, variations in (document.get("responses") or {}).items():
            for variation in variations:
                meta = (variation.get("metadata") or {}).get("kb") or {}
                kb.answers[name] = Answer(
                    name=name,
                    text=" ".join(str(variation.get("text", "")).split()),
                    version=int(meta.get("version", 0) or 0),
                    reviewed=_as_date(meta.get("reviewed")),
                    sources=tuple(meta.get("sources") or ()),
                    evidence=str(meta.get("evidence", "")),
                    title=str(meta.get("title", "")),
                    follow_up=str(meta.get("follow_up", "")),
                    file=path.name,
                    short=" ".join(str(meta.get("short", "") or "").split()),
                    no_uk_source=str(meta.get("no_uk_source", "") or ""),
                )
    return kb


def short_answers(kb: Optional[KnowledgeBase] = None) -> dict[str, str]:
    """The one-text-message version of every answer that has one, by response name.

    The texts hold the same ``{clinic_*}`` placeholders as the full answers.
    """
    kb = kb or load()
    return {name: answer.short for name, answer in kb.answers.items() if answer.short}


def problems(kb: KnowledgeBase, topics: Iterable[str], today: Optional[date] = None) -> list[str]:
    """Everything wrong with the knowledge base, as readable sentences (empty when fine).

    Args:
        kb: the loaded knowledge base.
        topics: the FAQ topics the assistant must answer (from the topic contract).
        today: for the review-date check (default: today).
    """
    today = today or date.today()
    found: list[str] = []
    topics = set(topics)
    for topic in sorted(topics - set(kb.faq)):
        found.append(f"topic faq/{topic} has no answer")
    for topic in sorted(set(kb.faq) - topics):
        found.append(f"answer utter_faq/{topic} has no topic with training examples (orphan)")
    used: set[str] = set()
    for answer in kb.answers.values():
        where = f"{answer.file}: {answer.name}"
        if not answer.sources:
            found.append(f"{where} cites no source")
        for source_id in answer.sources:
            used.add(source_id)
            if source_id not in kb.sources:
                found.append(f"{where} cites unknown source {source_id!r}")
        if answer.version < 1:
            found.append(f"{where} has no version")
        if answer.reviewed is None:
            found.append(f"{where} has no last-reviewed date")
        elif answer.reviewed > today:
            found.append(f"{where} is reviewed in the future ({answer.reviewed})")
        elif (today - answer.reviewed).days > REVIEW_INTERVAL_DAYS:
            found.append(f"{where} is due for review (last reviewed {answer.reviewed}, over {REVIEW_INTERVAL_DAYS} days ago)")
        if answer.topic and not answer.title:
            found.append(f"{where} has no button title")
        if answer.follow_up and answer.follow_up not in set(kb.answers) | kb.domain_responses:
            found.append(f"{where} offers a follow-up {answer.follow_up!r} that does not exist")
        if answer.topic and answer.text.rstrip().endswith("?") and not answer.follow_up:
            found.append(f"{where} ends with an offer but has no follow_up answer for 'yes'")
        words = len(answer.text.split())
        if answer.topic and not 40 <= words <= 120:
            found.append(f"{where} has {words} words (FAQ answers are 40-120)")
        for placeholder in re.findall(r"\{([^}]*)\}", answer.text):
            if placeholder not in PLACEHOLDERS:
                found.append(f"{where} uses unknown placeholder {{{placeholder}}}")
        if answer.topic:
            found.extend(_faq_problems(kb, answer, where))
        for pattern, label in FORBIDDEN:
            for text in (answer.text, answer.short):
                if pattern.search(text):
                    found.append(f"{where} contains a must-not-say statement: {label}")
    for source_id, source in kb.sources.items():
        if source_id not in used:
            found.append(f"source {source_id} is not cited by any answer")
        if not source.citation or not source.url.startswith(("http://", "https://")):
            found.append(f"source {source_id} lacks a citation or URL")
        if source.grade not in {"verified", "secondary"}:
            found.append(f"source {source_id} has grade {source.grade!r} (verified or secondary)")
    return found


def _faq_problems(kb: KnowledgeBase, answer: Answer, where: str) -> list[str]:
    """What FAQ answers owe beyond every answer: a short version, UK sources, no weak ones."""
    found = []
    if not answer.short:
        found.append(f"{where} has no short (one text message) version")
    elif len(answer.short) > SHORT_MAX_CHARS:
        found.append(f"{where} has a short version of {len(answer.short)} characters (at most {SHORT_MAX_CHARS})")
    for placeholder in re.findall(r"\{([^}]*)\}", answer.short):
        if placeholder not in PLACEHOLDERS:
            found.append(f"{where} uses unknown placeholder {{{placeholder}}} in its short version")
    cited = [kb.sources[s] for s in answer.sources if s in kb.sources]
    has_uk = any(source.uk for source in cited)
    if not has_uk and not answer.no_uk_source:
        found.append(f"{where} cites no UK source and does not say why (no_uk_source)")
    if has_uk and answer.no_uk_source:
        found.append(f"{where} cites a UK source but still says it has none (no_uk_source)")
    for source in cited:
        if not source.name:
            found.append(f"{where} cites {source.id}, which has no name for patients (name)")
        if source.weak:
            found.append(f"{where} cites {source.id}, which is kept only for older answers ({source.weak})")
    return found
