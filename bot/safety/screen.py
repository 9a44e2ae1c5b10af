"""Deterministic safety screen run on every patient message.

It reads the entities the project's spaCy pipeline found (conditions,
medications, devices, symptoms, red flags) and decides, with simple and
auditable rules, whether the message must reach clinic staff and why:

* ``emergency``: a red-flag symptom the patient is experiencing (not a
  hypothetical question such as "can it cause a collapsed lung?").
* ``adverse_event``: an ordinary problem after a treatment (soreness, bruising).
* ``contraindication``: the patient's (or a relative's) health situation,
  medication or implanted device, or a general question about who may not
  have dry needling.

Negation ("I'm not pregnant") and uncertainty ("not sure if I'm pregnant") are
told apart; uncertainty still escalates.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional, Protocol, Sequence

CONTRAINDICATION_LABELS = {"CONDITION", "MEDICATION", "DEVICE"}
# The ruler's labels the screen reads; OTHER_TREATMENT (massage, statins...) is not a
# health finding and is only used to keep FAQ answers on topic (bot/nlp/other_subject.py).
HEALTH_LABELS = CONTRAINDICATION_LABELS | {"BODY_REGION", "SYMPTOM", "RED_FLAG"}
# Red flags that are urgent even without a mention of a recent treatment (unless asked hypothetically).
ALWAYS_URGENT = {"breathing", "chest_pain", "fainting", "heavy_bleeding", "coughing_blood", "collapsed_lung"}

NEGATION_CUES = {"not", "n't", "n’t", "nt", "no", "never", "without", "nor", "neither", "non", "nothing", "none"}
UNCERTAINTY = re.compile(
    r"\b(not sure|unsure|not certain|don'?t know|do not know|no idea|might be|may be|maybe|could be|possibly|think i)\b"
)
CLAUSE_BREAKS = {".", ",", ";", "!", "?", "but", "and", "although", "though", "however", "yet", "except"}
NEGATION_WINDOW = 5
PERSISTENCE = {"stop", "stopping", "go", "going", "ease", "easing", "settle", "settling", "heal", "improve", "end", "clear"}

FIRST_PERSON = {"i", "me", "my", "mine", "myself", "im", "i'm", "ive", "i've", "we", "our", "us"}
RELATIONS = (
    "mother|mum|mom|mam|mummy|mommy|father|dad|daddy|son|daughter|child|kid|kids|children|baby|toddler|"
    "husband|wife|partner|boyfriend|girlfriend|fiance|fiancee|friend|grandma|granny|grandmother|nan|nana|"
    "grandad|grandpa|grandfather|brother|sister|aunt|auntie|uncle|niece|nephew|teen|teenager|boy|girl|"
    "client|patient|neighbour|neighbor|colleague|relative|parent|parents"
)
THIRD_PARTY = re.compile(rf"\b(my|our)\s+(\w+\s+)?({RELATIONS})\b")
POST_TREATMENT = re.compile(
    r"\b(since|after|following|post)\b[^.?!,]{0,30}\b(needl\w*|session|treatment|appointment|physio\w*|visit|therapy)\b"
    r"|\bfrom (the |my |that |this |last |today'?s |yesterday'?s )?(needl\w*|session|treatment)\b"
    r"|\b(just|i) had (the |my |some )?(dry )?(needl\w*|session|treatment)\b"
    # "I got needled", not "getting dry needled next week".
    r"|(?<!get )(?<!gets )(?<!getting )(?<!to be )(?<!get dry )(?<!gets dry )(?<!getting dry )(?<!to be dry )\bneedled\b"
    r"|\b(needle|puncture) (site|spot|mark|area|point|hole)s?\b|\bwhere (the|they|she|he) (needle|needled|put)"
    r"|\bthan before (the |my )?(dry )?(needl\w*|session|treatment)"
    r"|\b(yesterday|last night|this morning|earlier today|last session|last week|since then|ever since)\b"
    # "one needle gave me a sharp pain", "the session left me wiped out".
    r"|\b(needles?|needling|session|treatment) (gave|left|has left|made|caused) me\b"
    r"|\b(\d+|a|one|two|three|four|five|few|couple of) (hours?|days?|weeks?) (on|after|later|ago)\b"
)
QUESTION_START = re.compile(
    r"^\s*(can|could|does|do|did|will|would|is|are|might|may|what|how|should|whats|what's|any)\b"
)
HYPOTHETICAL = re.compile(
    r"\b(what if|risk|risks|chance|chances|possible|cause|causes|happen|happens|common|rare|ever(?! since)|"
    r"side effects?|dangers?|likely)\b"
    r"|\b(can|could|would|will|does|do|might)\s+(it|needling|dry needling|this|that|you|the needles?)\s+"
    r"(help|work|treat|fix|ease|sort)"
)
EXPERIENCE = re.compile(
    r"\b(i\s*(am|'m|m|have|'ve|ve|had|feel|felt|got|can'?t|cannot|couldn'?t|keep|started|fainted|passed|"
    r"collapsed|noticed|woke|just)|im\b|i've|my\s+\w+\s+(is|are|was|feels|felt|has|went|keeps|won'?t)|"
    r"(still|now|currently|right now|keeps|won'?t stop))"
)
# "am I gonna be sore after the needles", "I'm a chef, will I be stiff the next day after a
# session": a question about what will happen, even with "I'm" in it, unless the message
# also tells of something that has happened.
FUTURE = re.compile(
    r"\b(will|would|shall) (i|it|my \w+) (be|feel|get|hurt|ache)\b"
    r"|\b(am i|is it|are they|will i|will it) (gonna|going to|likely to) (be|feel|get|hurt|ache)\b"
)
PAST = re.compile(
    r"\b(had|got|was|were|went|did|felt|noticed|started|yesterday|last|ago|since|been|gave|left)\b|\w+ed\b"
)
# "what should I do if I feel faint during it?": a condition, not an experience.
CONDITIONAL_CLAUSE = re.compile(r"\b(what if|if|in case)\s+(i|you|it|someone|one)\b[^.?!,;]*")
# A child is only a contraindication when the message asks about treating them.
# "it" is the treatment in "can my son have it", not in "my son's homework, it's fractions".
CHILD_CONTEXT = re.compile(r"\b(needl\w*|treat\w*|therapy|physio\w*|this|that|it(?!'s|\u2019s| is| was))\b")
ELIGIBILITY = re.compile(
    r"\b(can|could|would|will|do you|safe|suitable|allowed|ok|okay|too young|old enough|appropriate|should|"
    r"minimum age|age limit|how old|age restrictions?)\b"
)
# Conditions that no longer apply ("used to have eczema as a kid, long gone").
RESOLVED = re.compile(r"\b(used to have|long gone|not any ?more|no longer|cleared up|went away|healed)\b")
RESOLVABLE = {"skin_condition", "infection"}
# Only a concern when the patient (or someone they speak for) takes it.
PERSONAL_ONLY = {"corticosteroid"}
# Asking for a person (not "are you a real person?", which is a question about the bot).
HUMAN_REQUEST = re.compile(
    r"\b(talk|speak|chat)\s+(to|with)\s+(a|an|my|the|your|someone|somebody|actual|real|human|reception)\b"
    r"|\b(get hold of|put me through|call me back|call ?back|ring me|phone me|give me a (call|ring)|contact me)\b"
    r"|\bwant (a|an|to speak to a|to talk to a) ?(real|actual)? ?(person|human)\b"
    # "i'd like a proper person to answer this", "would rather speak to an actual human".
    r"|\b(want|wanna|like|need|prefer|rather)( to (talk|speak|chat) (to|with))? (a|an|some) "
    r"(real|actual|proper|live) (person|human|human being|people)\b"
    # A named person ("i need to talk to Jess"), not the assistant itself.
    r"|\b(need|want|wanna|like|can i|could i|may i|let me)\s+(to\s+)?(talk|speak|chat)\s+(to|with)\s+"
    r"(?!(you|u|the bot|a bot|it|this|an? (bot|ai|assistant|robot|machine|computer))\b)[a-z]{2,}"
    # "is there anyone I can chat to", "someone I could speak with".
    r"|\b(anyone|anybody|someone|somebody|a person|a human|staff|a physio|a therapist)\b[^.?!]{0,30}?"
    r"\b(i|we) (can|could|might) (talk|speak|chat)\b"
    r"|\bhave a ((quick|short|brief|little|proper|wee|private) )?(word|chat|talk|natter) with\b"
    r"|\btouch base with\b"
    r"|\bwant (someone|somebody|a person) (real|human|actual)\b"
    # "can Dr Mehta call me", "could reception ring me".
    r"|\b(can|could|would|will) (dr\.? |doctor )?[a-z]+ (call|ring|phone) me\b"
    # "please get Aoife to ring me", "ask the physio to give me a shout".
    r"|\b(ask|get|have) (dr\.? |doctor |the |my )?[a-z]+ to (call|ring|phone|text|contact) me\b"
    r"|\b(ask|get|have) (dr\.? |doctor |the |my )?[a-z]+ to give me a (call|ring|shout|bell)\b"
    # A terse SMS asking for a person: "operator", "agent pls", "human please".
    r"|^\W*(an? )?((live|real|actual) )?(operator|representative|agent|human|person|receptionist|reception)"
    r"\W*(please|pls|plz)?\W*$"
)
# Not a request for a person: giving contact details when the handover form asks for
# them ("ring me on 0433 902 117", "best to ring me in the mornings"), or calling a
# request off ("don't want a callback anymore"). Loose on purpose: this only has to see
# that something looks like a number or address (the same shapes as the regex features in
# data/nlu/inform.yml); validating it is the form's job (bot.escalation.contact), which
# needs the clinic's region and would reject a foreign or mistyped number.
CONTACT_DETAILS = re.compile(
    r"\+?\d[\d\s().-]{6,}\d|[^@\s]+@[^@\s]+\.[a-z]{2,}"
    r"|\b(best|better|easiest)\s+(to\s+)?(call|ring|phone|text|email)\s+me\b"
    r"|\bpreferably\s+(by\s+)?(call|phone|text|email)"
)
CALLED_OFF = re.compile(
    r"\b(don'?t|do not|no longer)\s+(want|need)\b[^.?!]{0,25}?\b(call ?back|call|ring|talk|speak|chat|contact\w*|phone)\b"
    r"|\b(cancel|skip|scrap|forget|drop|ditch|quit|stop|don'?t bother with)\b[^.?!]{0,20}\bcall ?back\b"
    r"|\bcall ?back\b[^.?!]{0,20}\bany ?more\b"
    r"|\bno need for (a|the|that) (call|callback|call back|ring)\b"
)
# Needle-site signs that are growing or not fading are a problem to report, whether or
# not the message says where they came from.
WORSENING = re.compile(
    r"\b(getting|got|gets|grown|growing|gone) (bigger|larger|worse|darker|redder)\b|\bspreading\b"
    r"|\bnot (getting )?(smaller|better)\b|\b(is ?n'?t|not|hasn'?t|has not) (fading|faded|gone|cleared|healing)"
    r"|\b(been|for|over) (a|one|two|\d+|over a) weeks?\b"
)
WORSENING_SIGNS = {"bruising", "swelling", "minor_bleeding"}
# The patient tells the clinic about a reaction ("little bruise, just letting you know",
# "it's stopped now but thought I should tell you"): they want staff to know, so it is
# a report to pass on, however mild, and it refers to their treatment.
REPORTING = re.compile(
    r"\b(letting|let) (you|u|someone|somebody|the (clinic|team|physio))( all)? know\b"
    r"|\bthought (i'?d|i should|i would|you should|you'?d|you might) (want to )?(tell|let|mention|report|know)"
    r"|\bjust so (you|u) know\b|\bfyi\b|\bfor your (records|info|information)\b"
    r"|\bwanted to (tell|let|report|mention|flag)\b|\b(i'?m|i am) reporting\b"
)
# Expected reactions (fact sheet: soreness for hours to about two days, bruising up to a
# week, small spots of bleeding), reported as mild and within that window, are answered
# by the FAQ (side effects, aftercare), which says what is normal and when to call.
EXPECTED_REACTIONS = {"soreness", "bruising", "minor_bleeding"}
MILD = re.compile(
    r"\b(a bit|bit|a little|little|slightly|slight|mild|mildly|tiny|small|a touch|kinda|kind of|somewhat)\b"
    r"|\b(is (that|this|it) normal|normal\?|expected|to be expected|usual)"
)
NOT_MILD = re.compile(
    r"\b(really|so|very|super|extremely|massive|huge|big|large|awful|terrible|unbearable|agony|killing|"
    r"as hell|can'?t|cannot|couldn'?t|worse|worst|spreading|swollen|hot|lump|weeks?|"
    r"still (sore|bruised|achy|aching|hurting|hurts|bleeding|tender|painful|stiff))\b"
    # Widespread, however small each mark ("tiny bruises all over my shoulder").
    r"|\ball over\b|\bcovered in\b|\b(lots|loads|heaps) of bruis|\bbruises everywhere\b|\bmultiple\b"
)
# Soreness normally settles within about two days; a bruise can take up to a week.
BEYOND_SORENESS_WINDOW = re.compile(r"\b([3-9]|\d{2}|three|four|five|six|seven|several|few) days\b")
# Words that tie a message to treatment at the clinic. A health question without them
# that the model confidently calls out of scope ("is the shingles vaccine worth it")
# is a medical question for a GP, not a contraindication (see SafetyScreen).
TREATMENT_CONTEXT = re.compile(
    r"\b(needl\w*|dry|acupunct\w*|treat\w*|session\w*|physio\w*|therap\w*|appointment\w*|clinic|"
    r"book\w*|visit|procedure|allowed|suitable|safe|ok|okay|eligible|done)\b"
    r"|\b(can|could|may|should|would) (i|we|she|he|they|you) (still )?(get|have|do|book|come|try)\b"
    r"|\b(get|have|do) (it|this|that|one|my|her|his|their)\b"
)
# A question (as opposed to a statement such as "I have a mechanical heart valve").
QUESTION = re.compile(
    r"\?|^\s*(how|what|whats|what's|which|is|are|can|could|should|do|does|will|where|when|why)\b"
    r"|\b(how|what|which|should|can|could|do|does|is|are)\s+(i|you|it|the|a|an|my|we|they)\b"
)
# Bleeding that will not stop, however it is worded ("bleeding and wont stop", "still
# bleeding after pressing on it for 20 mins"): the phrase patterns cannot list them all.
PERSISTENT_BLEEDING = re.compile(
    r"\bbleed\w*\b[^.?!]{0,25}\b(won'?t|wont|will not|doesn'?t|does not|isn'?t|is not|hasn'?t|has not|"
    r"can'?t|cannot|not|never) (stop|stopping|stopped|ease|easing|settle|settling)"
    r"|\bstill bleeding\b[^.?!]{0,30}\b(\d+|twenty|ten|fifteen|thirty) ?(min|mins|minutes|hours?)\b"
    r"|\b(pressing|pressure|pressed)\b[^.?!]{0,40}\b(still|keeps?) bleeding\b"
    r"|\bbleeding\b[^.?!]{0,40}\b(pressing|pressure|pressed)\b[^.?!]{0,20}\b(\d+|twenty|ten|fifteen) ?(min|mins|minutes)\b"
    r"|\b(soaked|soaking|dripping) (through|with blood)"
)
# Findings that can only come from a treatment (a broken or retained needle).
TREATMENT_INCIDENTS = {"needle_incident"}
AGE = re.compile(
    r"\b(\d{1,2})[\s-]*(year|yr)s?[\s-]*old\b|\baged?\s+(\d{1,2})\b|\bi'?m\s+(\d{1,2})\b(?!\s*(weeks?|months?|days?|%))"
    # "my daughter is 14", "he's only 12", "my son turns 15"
    r"|\b(son|daughter|child|kid|boy|girl|teen|teenager|he|she|he's|she's)\s+(is\s+|'s\s+|turns\s+|turned\s+)?"
    r"(only\s+|just\s+)?(\d{1,2})\b(?!\s*(weeks?|months?|days?|%|kg|kgs|lbs?|cm|stone|times|sessions?|foot|feet|ft|inch\w*))"
    r"|\b(\d{1,2})\s*(yo|y/o|yrs)\b"
)
CHILD_AGE_LIMIT = 16


class Span(Protocol):
    """What the screen needs of an entity (a spaCy ``Span`` fits)."""

    label_: str
    ent_id_: str
    text: str
    start: int
    end: int


@dataclass
class Finding:
    """One curated term found in the message."""

    label: str
    category: str
    text: str
    negated: bool = False
    uncertain: bool = False

    @property
    def active(self) -> bool:
        """Whether the term counts (not negated, or negated but uncertain)."""
        return not self.negated or self.uncertain


@dataclass
class Assessment:
    """The screen's verdict on one message."""

    reason: Optional[str] = None
    #: The message names health terms only to rule them out ("I'm not pregnant").
    only_negated_health_terms: bool = False
    personal: bool = False
    third_party: bool = False
    hypothetical: bool = False
    #: A question about a situation in an "if ..." clause, with no experience of its own.
    conditional: bool = False
    post_treatment: bool = False
    #: Only mild, expected after-effects (soreness, a small bruise) in the normal window.
    expected_reaction: bool = False
    findings: list[Finding] = field(default_factory=list)

    @property
    def matched_terms(self) -> list[str]:
        """Terms that led to the verdict (active findings only)."""
        return [f"{f.category}:{f.text.lower()}" for f in self.findings if f.active]

    def as_dict(self) -> dict:
        """A JSON-serialisable form, stored with the parse result and escalations."""
        data = asdict(self)
        data["matched_terms"] = self.matched_terms
        return data


def _negated(tokens: Sequence[str], start: int) -> bool:
    """Whether a negation cue stands shortly before ``start`` within the same clause."""
    for index in range(start - 1, max(-1, start - 1 - NEGATION_WINDOW), -1):
        word = tokens[index]
        if word in CLAUSE_BREAKS:
            return False
        if word in NEGATION_CUES:
            # "won't stop bleeding", "not going away": persistence, not negation.
            following = tokens[index + 1] if index + 1 < len(tokens) else ""
            return following not in PERSISTENCE
    return False


def assess(text: str, tokens: Sequence[str], entities: Iterable[Span]) -> Assessment:
    """Screen one message.

    Args:
        text: the patient's message.
        tokens: the message's tokens, lower-cased (spaCy tokenisation).
        entities: entity spans from the curated entity ruler.
    """
    lowered = " ".join(text.lower().split())
    uncertain = bool(UNCERTAINTY.search(lowered))
    findings = [
        Finding(
            label=ent.label_,
            category=ent.ent_id_ or ent.label_.lower(),
            text=ent.text,
            negated=_negated(tokens, ent.start),
            uncertain=uncertain,
        )
        for ent in entities
        if ent.label_ in HEALTH_LABELS
    ]
    if PERSISTENT_BLEEDING.search(lowered) and not any(f.category == "heavy_bleeding" for f in findings):
        findings.append(Finding(label="RED_FLAG", category="heavy_bleeding", text="persistent bleeding"))
    for match in AGE.finditer(lowered):
        age = int(next(group for group in match.groups() if group and group.isdigit()))
        if age < CHILD_AGE_LIMIT:
            findings.append(Finding(label="CONDITION", category="child", text=match.group(0)))

    third_party = bool(THIRD_PARTY.search(lowered))
    personal = third_party or any(token in FIRST_PERSON for token in tokens)
    about_child_treatment = bool(CHILD_CONTEXT.search(lowered) and ELIGIBILITY.search(lowered))
    resolved = bool(RESOLVED.search(lowered))
    for finding in findings:
        if (
            (finding.category == "child" and not about_child_treatment)
            or (finding.category in RESOLVABLE and resolved)
            or (finding.category in PERSONAL_ONLY and not personal)
        ):
            finding.negated, finding.uncertain = True, False
    without_conditions = CONDITIONAL_CLAUSE.sub(" ", lowered)
    conditional = without_conditions != lowered
    reporting = bool(REPORTING.search(lowered)) and any(f.active and f.label == "SYMPTOM" for f in findings)
    post_treatment = reporting or bool(POST_TREATMENT.search(lowered)) or any(
        f.active
        and (
            f.category in TREATMENT_INCIDENTS
            or (f.category in WORSENING_SIGNS and WORSENING.search(lowered))
        )
        for f in findings
    )
    # An "if ..." clause is a question, unless the message places it after a treatment
    # ("what do I do if I can't breathe since my session" is an experience).
    experience = bool(EXPERIENCE.search(lowered if post_treatment else without_conditions))
    hypothetical = bool(QUESTION_START.search(lowered) or HYPOTHETICAL.search(lowered)) and not experience
    # Only for the ordinary after-effects: a red flag or an unusual symptom is never read
    # as a question about the future ("my arm is numb, will it wear off?").
    future = FUTURE.search(lowered)
    hypothetical = hypothetical or bool(
        future
        and not PAST.search(lowered)
        # The symptom is what the future question asks about, not told before it
        # ("really sore after the session, will it settle?" is a report).
        and not any(f.text.lower() in lowered[: future.start()] for f in findings if f.label == "SYMPTOM")
        and not reporting
        and all(f.category in EXPECTED_REACTIONS for f in findings if f.label in {"SYMPTOM", "RED_FLAG"})
    )
    result = Assessment(
        personal=personal,
        third_party=third_party,
        hypothetical=hypothetical,
        conditional=conditional and hypothetical,
        post_treatment=post_treatment,
        findings=findings,
    )

    active = [f for f in findings if f.active]
    symptoms = [f for f in active if f.label == "SYMPTOM"]
    result.expected_reaction = bool(
        not reporting
        and symptoms
        and all(f.category in EXPECTED_REACTIONS for f in symptoms)
        and not any(f.label in CONTRAINDICATION_LABELS | {"RED_FLAG"} for f in active)
        and MILD.search(lowered)
        and not NOT_MILD.search(lowered)
        and not (any(f.category == "soreness" for f in symptoms) and BEYOND_SORENESS_WINDOW.search(lowered))
        and not WORSENING.search(lowered)
    )
    red_flags = [f for f in active if f.label == "RED_FLAG"]
    urgent = [f for f in red_flags if not hypothetical and (post_treatment or f.category in ALWAYS_URGENT)]
    health = [f for f in findings if f.label in CONTRAINDICATION_LABELS]
    result.only_negated_health_terms = bool(health) and not any(f.active for f in health)
    if urgent:
        result.reason = "emergency"
    elif any(f.label in CONTRAINDICATION_LABELS for f in active):
        result.reason = "contraindication"
    elif (
        HUMAN_REQUEST.search(lowered)
        and not CONTACT_DETAILS.search(lowered)
        and not CALLED_OFF.search(lowered)
        and not (post_treatment and any(f.label == "SYMPTOM" for f in active))
    ):
        result.reason = "human_request"
    elif (
        post_treatment
        and not hypothetical
        and not result.expected_reaction
        and any(f.label in {"SYMPTOM", "RED_FLAG"} for f in active)
    ):
        # A symptom after a treatment that is not a mild, expected one gets the aftercare
        # advice and an offer of follow-up from a physiotherapist.
        result.reason = "adverse_event"
    return result


def is_emergency(parse_data: dict) -> bool:
    """Whether a parsed message needs urgent guidance first.

    True when the screen found an urgent red flag, or when the message is about a
    problem after treatment (``report_adverse_event``) and mentions any red-flag
    symptom that is not negated, even one phrased like a question.
    """
    safety = parse_data.get("safety") or {}
    if safety.get("reason") == "emergency":
        return True
    if (parse_data.get("intent") or {}).get("name") != "report_adverse_event":
        return False
    return any(
        finding.get("label") == "RED_FLAG" and (not finding.get("negated") or finding.get("uncertain"))
        for finding in safety.get("findings", [])
    )


# --- Seam for issue 14 (temporary wrapper over assess(); replaced by the ConText pipeline) ---

from functools import lru_cache  # noqa: E402

from bot.safety.verdict import Evidence, Verdict  # noqa: E402


@lru_cache(maxsize=1)
def _nlp():
    import spacy

    from bot.nlp.pipeline import DEFAULT_OUTPUT

    return spacy.load(DEFAULT_OUTPUT)


def screen_text(text: str) -> Verdict:
    """Screen one patient message with the project's spaCy pipeline (no Rasa model needed)."""
    doc = _nlp()(text)
    a = assess(text, [t.lower_ for t in doc], doc.ents)
    evidence = [
        Evidence(
            label=f.label, category=f.category, text=f.text,
            contexts=(["NEGATED"] if f.negated else []) + (["POSSIBLE"] if f.uncertain else []),
            reason=a.reason if f.active else None,
        )
        for f in a.findings
    ]
    return Verdict(reason=a.reason, evidence=evidence, personal=a.personal, third_party=a.third_party)
