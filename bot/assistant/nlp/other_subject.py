"""Is a question shaped like an FAQ question actually about another treatment?

"What are the side effects of statins?", "does cupping hurt?" and "how many chiro
sessions will I need?" have the words of the side-effects, pain and sessions FAQs,
and a statistical classifier sometimes answers them from the dry-needling
knowledge base. Such an answer is wrong in a harmful way: it tells a patient about
needling as if it were about their medicine or therapy. This check gives the
classifier's FAQ answer a second condition: a message that names another
treatment, medicine, procedure or health service (curated in
``data/patterns/other_treatments.jsonl``) is only answered from the FAQ when it
also refers to needling ("is dry needling better than a massage") or relates the
other subject to it ("massage didn't help, could it?", "can I do yoga the same
day?", "can I have a massage after?"). Otherwise it gets the out-of-scope answer,
which points to the GP, pharmacist or the clinic's phone.

The word lists are data (``data/safety/subject_terms.yml``, read at run time).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

from spacy.tokens import Doc, Span

from bot.core.safety.terms import lexicon

OTHER_TREATMENT = "OTHER_TREATMENT"


def refers_to_needling(doc: Doc) -> bool:
    """Whether a message refers to needling, not to a knitting or sewing needle."""
    terms = lexicon()
    if not terms["needling_reference"].any(doc):
        return False
    return not terms["other_needles"].any(doc) or terms["the_treatment"].any(doc)


def _sequence_about_needling(tokens: Sequence[str], others: Sequence[Span]) -> bool:
    terms = lexicon()
    sequence, determiners = terms.words("sequence"), terms.words("determiners")
    starts = {span.start for span in others}
    for i, token in enumerate(tokens):
        if token not in sequence:
            continue
        j = i + 1
        while j < len(tokens) and tokens[j] in determiners:
            j += 1
        # "a massage after?": the sequence word points at the needling session.
        if j not in starts and not any(span.start <= j < span.end for span in others):
            return True
    return False


def other_subject(doc: Doc, entities: Optional[Iterable[Span]] = None) -> Optional[Span]:
    """The other treatment a message asks about on its own, or ``None``.

    Args:
        doc: the message parsed by the project's spaCy pipeline.
        entities: entity spans from the curated entity ruler (``doc.ents`` by default).
    """
    others = [span for span in (doc.ents if entities is None else entities) if span.label_ == OTHER_TREATMENT]
    if not others:
        return None
    if refers_to_needling(doc) or lexicon()["relation"].any(doc):
        return None
    if _sequence_about_needling([t.lower_ for t in doc], others):
        return None
    return others[0]
