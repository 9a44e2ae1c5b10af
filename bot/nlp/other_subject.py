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
"""

from __future__ import annotations

import re
from typing import Iterable, Optional, Sequence

from spacy.tokens import Span

OTHER_TREATMENT = "OTHER_TREATMENT"

# The message is about needling.
NEEDLING_REFERENCE = re.compile(
    r"\b(dry[\s-]?needl\w*|needl\w*|ims|intramuscular stimulation|acupunct\w*|"
    r"this treatment|the treatment (here|you do|you offer))\b"
)
# Needles of crafts and other things: "what needle size for chunky wool" is not about
# needling, unless the message also names the treatment.
OTHER_NEEDLES = re.compile(
    r"\b(knit\w*|sew\w*|crochet\w*|embroider\w*|cross[\s-]?stitch\w*|yarn|wool|thread\w*|quilt\w*|"
    r"tapestry|darning|felting|haberdash\w*|record player|turntable|stylus|pine needles?|compass)\b"
)
THE_TREATMENT = re.compile(
    r"\b(dry[\s-]?needl\w*|needling|needled|acupunct\w*|ims|physio\w*|sessions?|treatments?|clinic)\b"
)


def refers_to_needling(lowered: str) -> bool:
    """Whether a (lower-cased) message refers to needling, not to a knitting or sewing needle."""
    if not NEEDLING_REFERENCE.search(lowered):
        return False
    return not OTHER_NEEDLES.search(lowered) or bool(THE_TREATMENT.search(lowered))


# Words that relate another subject to needling rather than ask about it alone:
# comparison, combination, sequence, a treatment that did not help, after-effects,
# what to bring, who performs it.
RELATION = re.compile(
    r"\b(than|vs|versus|compared?|comparison|instead|rather|alongside|as well as|together|"
    r"combined?|combining|same as|different|difference|differ|similar|while|whilst|"
    r"still|keep|continue|carry on|didn'?t|did not|hasn'?t|has not|haven'?t|have not|wasn'?t|"
    r"better|worse|beats?|outperforms?|as (much|bad|painful|sore|good|effective) as|"
    r"failed|tried|same day|same session|next (day|morning)|day after|afterwards?|beforehand|between|"
    r"sore|soreness|achy|aches?|bruis\w*|tender|bring|"
    # "is it chiros doing it or physios": who performs it, not a question about chiropractic.
    r"physios?|physiotherapists?)\b"
)
# "after" / "before" / "during" relate to the needling session ("a massage after?",
# "can I listen to music during?") unless the other subject is their own object
# ("water after a massage?", "what happens during a mammogram?").
SEQUENCE = {"after", "before", "following", "during"}
DETERMINERS = {"a", "an", "the", "my", "your", "his", "her", "their", "our", "some"}


def _sequence_about_needling(tokens: Sequence[str], others: Sequence[Span]) -> bool:
    starts = {span.start for span in others}
    for i, token in enumerate(tokens):
        if token not in SEQUENCE:
            continue
        j = i + 1
        while j < len(tokens) and tokens[j] in DETERMINERS:
            j += 1
        # "a massage after?": the sequence word points at the needling session.
        if j not in starts and not any(span.start <= j < span.end for span in others):
            return True
    return False


def other_subject(text: str, tokens: Sequence[str], entities: Iterable[Span]) -> Optional[Span]:
    """The other treatment a message asks about on its own, or ``None``.

    Args:
        text: the patient's message.
        tokens: its tokens, lower-cased (spaCy tokenisation, aligned with the spans).
        entities: entity spans from the curated entity ruler.
    """
    others = [span for span in entities if span.label_ == OTHER_TREATMENT]
    if not others:
        return None
    lowered = " ".join(text.lower().split())
    if refers_to_needling(lowered) or RELATION.search(lowered):
        return None
    if _sequence_about_needling(tokens, others):
        return None
    return others[0]
