"""Does a message the classifier answered from the FAQ name a subject the assistant has never met?

"What's the price of bitcoin?", "will it be dry enough in Cork on Sunday for a
barbecue?" and "is it safe to travel to Egypt right now?" share their question
words ("price", "dry", "safe") with the dry-needling FAQ, and a statistical
classifier answers some of them with the cost, side-effects or safety answer. The
other-treatment check (:mod:`bot.assistant.nlp.other_subject`) cannot see them: they name no
treatment. Neither can a confidence threshold or the sentence embedding: both were
measured (docs/benchmarks.md) and score these leaks like ordinary FAQ questions.

What they have in common is lexical: a content word that appears in none of the
assistant's in-domain training examples (every intent but ``out_of_scope``), and no
word that ties the message to a treatment session. This component learns that
vocabulary at training time and, when the model's answer would be an FAQ answer,
asks instead of answering ("did you mean ...?" with the likeliest topics as
buttons) if the message

* has a word the in-domain vocabulary has never seen (spelling slips of known
  words, chat shorthand, numbers and the curated health terms do not count), and
* has no *subject* word of the domain (needling, treatment, session, muscle,
  soreness, after/before, ...), and
* has no *aspect* word of the domain (price, cover, safe, evidence, ...) that is
  about "it" or "this" ("is it covered under the VHI?"), as opposed to an empty
  "it" ("is it safe to travel to ...", "will it rain ...").

The same holds for the clinic's own answers (opening hours and address, booking): "what
are the opening hours of the Louvre" or "where's the closest ATM" get "did you mean ...?"
unless they refer to the clinic ("are you open", "is there parking", "your address").

The word lists (subject, aspect and clinic words, chat shorthand) are data:
``data/safety/subject_terms.yml``, read at run time.

A genuine FAQ question with an unusual word ("should I come in my tracksuit?")
costs the patient one tap on the suggested topic; an unrelated question gets no
dry-needling answer. Staff routing and the other-treatment check run first
(:mod:`bot.assistant.nlp.safety_component`).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Iterable, List, Optional, Set, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from spacy.tokens import Doc

from bot.assistant.nlp.other_subject import refers_to_needling
from bot.core.safety.terms import lexicon, outside

logger = logging.getLogger(__name__)

VOCABULARY_FILE = "in_domain_vocabulary.json"
# The FallbackClassifier's intent, so the two-stage fallback rules take over.
FALLBACK_INTENT = DEFAULT_NLU_FALLBACK_INTENT_NAME
RESULT_KEY = "unfamiliar_subject"

MIN_WORD = 3
MIN_SLIP = 5


class Vocabulary:
    """Words (and lemmas) of the in-domain training examples, tolerant of one-letter slips."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words: Set[str] = {w for w in words if w}
        # Every known word with one letter dropped: a typed word matches a known word
        # with one letter missing, added, or swapped for another (symmetric deletions).
        self._deletions: Set[str] = {
            word[:i] + word[i + 1:] for word in self.words if word.isalpha() and len(word) >= MIN_SLIP - 1
            for i in range(len(word))
        }

    def knows(self, word: str, lemma: str) -> bool:
        """Whether ``word`` (lower-cased) is the vocabulary's, an inflection of it, or a slip of it."""
        if word in self.words or lemma in self.words:
            return True
        for suffix in lexicon().words("inflections"):
            stem = word[: -len(suffix)]
            if word.endswith(suffix) and len(stem) >= MIN_WORD and (stem in self.words or stem + "e" in self.words):
                return True
        if len(word) >= MIN_SLIP:
            if word in self._deletions:
                return True
            dropped = {word[:i] + word[i + 1:] for i in range(len(word))}
            if dropped & self.words or dropped & self._deletions:
                return True
        return False

    def unknown_words(self, doc: Doc) -> List[str]:
        """Content words of ``doc`` the vocabulary has never seen (curated health terms excluded)."""
        in_entity = {i for span in doc.ents for i in range(span.start, span.end)}
        unknown = []
        for token in doc:
            word = token.lower_
            if token.i in in_entity or not token.is_alpha or len(word) < MIN_WORD:
                continue
            if token.is_stop or word in lexicon().words("shorthand"):
                continue
            if not self.knows(word, token.lemma_.lower()):
                unknown.append(word)
        return unknown


def tied_to_needling(text: str, doc: Doc) -> bool:
    """A needling reference, a health term, a subject word, or an aspect word about "it"/"this"."""
    terms = lexicon()
    if refers_to_needling(doc) or terms["subject"].any(doc):
        return True
    if any(span.label_ != "OTHER_TREATMENT" for span in doc.ents):
        return True
    if not terms["aspect"].any(doc):
        return False
    # "is it safe to travel", "will it rain": an "it" that refers to nothing does not count.
    return bool(outside(terms["reference"].spans(doc), terms.pattern_spans("empty_it", doc)))


def unfamiliar_subject(text: str, doc: Doc, vocabulary: Vocabulary, about_clinic: bool = False) -> List[str]:
    """The unfamiliar words of a message that is not tied to needling (or, with
    ``about_clinic``, to the clinic), or ``[]``."""
    unknown = vocabulary.unknown_words(doc)
    if not unknown or tied_to_needling(text, doc):
        return []
    if about_clinic and lexicon()["clinic_reference"].any(doc):
        return []
    return unknown


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class UnfamiliarSubjectCheck(GraphComponent):
    """Turns an answer into "did you mean ...?" when the message names a subject outside the domain."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Which examples make up the vocabulary (all intents but the unrelated ones), and
        which answers are checked: the FAQ against needling, the clinic's own information
        and booking against needling or the clinic."""
        return {
            "unrelated_intents": ["out_of_scope"],
            "answer_intents": ["faq"],
            "clinic_intents": ["clinic_info", "book_appointment"],
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: Optional[Vocabulary] = None,
    ) -> None:
        """Holds the config and, once trained or loaded, the vocabulary."""
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._vocabulary = vocabulary

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "UnfamiliarSubjectCheck":
        """A new, untrained component."""
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "UnfamiliarSubjectCheck":
        """Loads the vocabulary from the model archive (the check is off without one)."""
        vocabulary = None
        try:
            with model_storage.read_from(resource) as directory:
                stored = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
            vocabulary = Vocabulary(stored["words"])
        except (ValueError, FileNotFoundError, KeyError):
            logger.warning("no vocabulary for UnfamiliarSubjectCheck in the model; the check is off")
        return cls(config, model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        """Collects the words and lemmas of every in-domain training example."""
        unrelated = set(self._config["unrelated_intents"])
        words: Set[str] = set()
        for message in training_data.intent_examples:
            doc = message.get(SPACY_DOCS[TEXT])
            if doc is None or message.get(INTENT) in unrelated:
                continue
            for token in doc:
                if token.is_alpha:
                    words.update({token.lower_, token.lemma_.lower()})
        self._vocabulary = Vocabulary(words)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(
                json.dumps({"words": sorted(words)}), encoding="utf-8"
            )
        logger.info("UnfamiliarSubjectCheck learned %d in-domain words", len(words))
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add to the training data."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Replaces an FAQ, clinic or booking answer by the fallback when the message names an unfamiliar subject."""
        if self._vocabulary is None:
            return messages
        for message in messages:
            self._check(message)
        return messages

    def _check(self, message: Message) -> None:
        text = message.get(TEXT)
        intent = message.get(INTENT) or {}
        if not isinstance(text, str) or text.startswith("/"):
            return  # nothing typed, or a button payload
        name = intent.get(INTENT_NAME_KEY)
        about_clinic = name in self._config["clinic_intents"]
        if name not in self._config["answer_intents"] and not about_clinic:
            return
        safety = message.get("safety") or {}
        if safety.get("reason"):
            return  # routed to staff: never turned into a question
        doc = message.get(SPACY_DOCS[TEXT])
        if doc is None:
            return
        unknown = unfamiliar_subject(text, doc, self._vocabulary, about_clinic)
        if not unknown:
            return
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != FALLBACK_INTENT]
        fallback = {INTENT_NAME_KEY: FALLBACK_INTENT, "confidence": 1.0}
        # The model's ranking and topic choice stay, so "did you mean ...?" offers them.
        message.set(INTENT, fallback, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [fallback] + ranking, add_to_output=True)
        message.set(RESULT_KEY, {"unknown_words": unknown, "model_intent": intent}, add_to_output=True)
        # The count only: the words are the patient's.
        logger.info("%s answer held back: %d word(s) outside the domain and nothing tying it in", name, len(unknown))

