"""The language safety net (bot/core/safety/languages.py): language identification and red flags in five languages.

The catalogue examples in ``data/safety/languages/*.yml`` are the cases: every example must
be found as a report of its class (also inside each of the file's templates), every
``not_emergency`` example must not be. Identification is measured on every English message
of the NLU data and the held-out sets: the rate at which they are taken for another
language is printed and bounded.
"""

from __future__ import annotations

import glob
import re
import statistics
import time
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.safety.languages import LANGUAGES_DIR, RED_FLAG_CLASSES, CatalogueError, LanguageNet, LocalFinding, default_net, fold, identify, identify_for_safety

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("nl", "fr", "de", "pl", "es")
#: The NLU data's own non-English examples (out_of_scope.yml teaches the model that other
#: languages are out of scope); everything else in data/nlu and evaluation/sets/nlu_holdout* is English.
NON_ENGLISH_NLU = frozenset({
    "tut das nadeln weh", "wie lange dauert eine behandlung", "kan ik een afspraak maken voor morgen",
    "doet het pijn", "combien coute une seance", "est ce que ca fait mal", "cuanto cuesta la sesion",
    "duele mucho", "fa male l'ago", "quanto costa una seduta", "czy to boli", "ile kosztuje wizyta",
    "quanto custa a consulta", "doi nao",
})
#: English messages taken for another language, at most (see test_english_messages_are_identified_as_english).
MAX_MISIDENTIFIED = 0.001
VALUES = {"clinic_name": "Riverside Physiotherapy", "clinic_phone": "020 7946 0958", "emergency_number": "999"}


def _catalogue(code: str) -> dict:
    return yaml.safe_load((LANGUAGES_DIR / f"{code}.yml").read_text(encoding="utf-8"))


CATALOGUES = {code: _catalogue(code) for code in LANGUAGES}
REPORTS = [
    (code, name, text)
    for code, data in CATALOGUES.items()
    for name, entry in data["classes"].items()
    for text in entry.get("examples") or ()
]
NOT_EMERGENCIES = [
    (code, name, text)
    for code, data in CATALOGUES.items()
    for name, entry in data["classes"].items()
    for text in entry.get("not_emergency") or ()
]
ORDINARY = [(code, text) for code, data in CATALOGUES.items() for text in data.get("ordinary") or ()]
THIRD_PARTY = [(code, text) for code, data in CATALOGUES.items() for text in data.get("third_party_examples") or ()]
TEMPLATED = [
    (code, name, template.format(report=text))
    for code, name, text in REPORTS
    for template in CATALOGUES[code]["templates"]["report"]
]


def _ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [f"{code}-{name}-{i}" for i, (code, name, _) in enumerate(cases)]


def english_messages() -> list[str]:
    """Every example of data/nlu and evaluation/sets/nlu_holdout*, without entity markup, but the non-English ones."""
    messages = []
    for path in sorted(glob.glob(str(ROOT / "data/nlu/*.yml")) + glob.glob(str(ROOT / "evaluation/sets/nlu_holdout*/*.yml"))):
        for item in (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("nlu") or ():
            if not isinstance(item.get("examples"), str):
                continue
            for line in item["examples"].splitlines():
                line = line.strip()
                if line.startswith("- "):
                    text = re.sub(r"\[([^\]]*)\](\{[^}]*\}|\([^)]*\))", r"\1", line[2:]).strip()
                    if text not in NON_ENGLISH_NLU:
                        messages.append(text)
    return messages


@pytest.fixture(scope="module")
def net() -> LanguageNet:
    return default_net()


def _reports(net: LanguageNet, text: str, code: str) -> list[LocalFinding]:
    return [f for f in net.findings(text, code) if f.is_report]


# --- the catalogues ------------------------------------------------------------------


def test_every_language_of_the_net_has_a_catalogue_and_english_is_the_fallback(net):
    assert all(net.supported(code) for code in LANGUAGES)
    assert not net.supported("en") and not net.supported("it")
    assert net.findings("non riesco a respirare", "it") == []


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_catalogue_covers_every_red_flag_class_with_examples(code):
    classes = CATALOGUES[code]["classes"]
    assert set(classes) == set(RED_FLAG_CLASSES)
    assert all(entry.get("examples") and entry.get("not_emergency") for entry in classes.values())


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_term_folds_to_plain_letters(code):
    """A stray letter of another script (a Cyrillic "а" in a Polish word) would never match."""
    for name, entry in CATALOGUES[code]["classes"].items():
        for term in entry["terms"]:
            assert fold(term).isascii(), (name, term)


@pytest.mark.parametrize("code", LANGUAGES + ("en",))
@pytest.mark.parametrize("key", ["emergency", "emergency_third_party", "other_language"])
def test_every_reply_is_filled_with_the_clinic_facts(net, code, key):
    text = net.reply(code, key, VALUES)
    assert text and "{" not in text
    assert VALUES["clinic_phone"] in text and VALUES["emergency_number"] in text
    if key == "other_language":
        assert VALUES["clinic_name"] in text
    if key.startswith("emergency"):
        assert "A&E" in text


def test_a_reply_missing_a_value_is_none_not_a_half_filled_text(net):
    assert net.reply("pl", "emergency", {"clinic_phone": "1"}) is None
    assert net.reply("pl", "no_such_reply", VALUES) is None
    assert net.reply("xx", "emergency", VALUES) is None


def test_an_unknown_red_flag_class_in_a_catalogue_is_refused(tmp_path):
    (tmp_path / "en.yml").write_text((LANGUAGES_DIR / "en.yml").read_text(encoding="utf-8"), encoding="utf-8")
    data = _catalogue("nl")
    data["classes"]["gout"] = {"terms": ["jicht"]}
    (tmp_path / "nl.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogueError, match="gout"):
        LanguageNet(tmp_path)


# --- red flags -----------------------------------------------------------------------


@pytest.mark.parametrize("code,name,text", TEMPLATED, ids=_ids(TEMPLATED))
def test_catalogue_example_is_found_as_a_report_of_its_class(net, code, name, text):
    assert name in {f.red_flag_class for f in _reports(net, text, code)}


@pytest.mark.parametrize("code,name,text", NOT_EMERGENCIES, ids=_ids(NOT_EMERGENCIES))
def test_negated_or_hypothetical_example_is_not_a_report(net, code, name, text):
    assert _reports(net, text, code) == []


@pytest.mark.parametrize("code,text", ORDINARY)
def test_an_ordinary_question_or_mild_after_effect_is_no_red_flag(net, code, text):
    assert _reports(net, text, code) == []
    assert identify_for_safety(text, net) in (code, "en")


@pytest.mark.parametrize("code,text", THIRD_PARTY)
def test_a_report_about_someone_else_is_a_report_marked_third_party(net, code, text):
    reports = _reports(net, text, code)
    assert reports and all(f.third_party for f in reports)


@pytest.mark.parametrize("code,name,text", REPORTS, ids=_ids(REPORTS))
def test_a_report_in_a_catalogue_language_reaches_that_language(net, code, name, text):
    assert identify_for_safety(text, net) == code


def test_a_first_person_report_is_not_taken_for_someone_else_by_an_impersonal_phrase(net):
    assert not _reports(net, "nie mogę oddychać, to nie może być normalne", "pl")[0].third_party
    assert not _reports(net, "no puedo respirar, no puede ser normal", "es")[0].third_party


def test_a_term_holding_the_negation_word_is_not_negated_by_it(net):
    assert _reports(net, "ik kan niet ademen", "nl")[0].red_flag_class == "breathing"
    assert _reports(net, "nie mogę oddychać", "pl")[0].red_flag_class == "breathing"
    assert _reports(net, "je ne peux pas respirer", "fr")[0].red_flag_class == "breathing"


def test_negation_reaches_only_a_few_words_and_not_past_but(net):
    assert _reports(net, "ik heb geen pijn op de borst", "nl") == []
    assert _reports(net, "geen koorts maar wel erg benauwd", "nl")[0].red_flag_class == "breathing"
    assert _reports(net, "no tengo fiebre, pero me falta el aire", "es")[0].red_flag_class == "breathing"


def test_a_gap_in_a_term_never_swallows_a_negation(net):
    assert _reports(net, "ich sehe nicht verschwommen", "de") == []
    assert _reports(net, "ich sehe seit gestern verschwommen", "de")[0].red_flag_class == "vision"


def test_i_do_not_know_why_is_no_negation(net):
    assert _reports(net, "ik weet niet waarom ik zo benauwd ben", "nl")[0].red_flag_class == "breathing"
    assert _reports(net, "nie wiem czemu, duszę się", "pl")[0].red_flag_class == "breathing"


def test_a_risk_question_is_a_report_when_the_patient_says_it_is_happening(net):
    assert _reports(net, "kan dry needling een klaplong veroorzaken?", "nl") == []
    told = _reports(net, "ik heb een klaplong, kan dry needling dat veroorzaken?", "nl")
    assert told[0].red_flag_class == "breathing"


def test_hypothetical_cue_reaches_over_a_comma_to_the_end_of_its_sentence(net):
    assert _reports(net, "was ist, wenn ich ohnmächtig werde?", "de") == []
    later = _reports(net, "was ist, wenn ich ohnmächtig werde? Jetzt habe ich Atemnot!", "de")
    assert [f.red_flag_class for f in later] == ["breathing"]


def test_fold_lowers_and_removes_diacritics_including_polish_l_and_german_sharp_s():
    assert fold("Oddychać ŁÓDŹ Straße Geïrriteerd") == "oddychac lodz strasse geirriteerd"


# --- properties: the wording of a report may vary, its finding may not --------------


def _strip_marks(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(REPORTS), data=st.data())
def test_a_report_survives_diacritics_removed_or_added_case_and_punctuation(case, data):
    code, name, text = case
    net = default_net()
    variant = data.draw(st.sampled_from([str.upper, str.lower, str.title, _strip_marks, lambda t: t]))(text)
    # Combining accents on random letters (a patient's autocorrect, or a stray dead key).
    accents = data.draw(st.lists(st.integers(0, max(len(variant) - 1, 0)), max_size=3))
    chars = list(variant)
    for i in sorted(set(accents), reverse=True):
        if chars[i].isalpha():
            chars.insert(i + 1, "\u0301")
    variant = "".join(chars)
    variant = data.draw(st.sampled_from(["", "!!! ", "... ", "* "])) + variant
    variant += data.draw(st.sampled_from(["", "!!", "?!", " :(", "..."]))
    assert name in {f.red_flag_class for f in _reports(net, variant, code)}, variant


@settings(max_examples=100, deadline=None)
@given(case=st.sampled_from(NOT_EMERGENCIES), prefix=st.sampled_from(["", "Hallo. ", "Bonjour. ", "Hola. ", "Hi, "]))
def test_a_neutral_greeting_never_makes_a_negated_or_hypothetical_example_a_report(case, prefix):
    code, _, text = case
    assert _reports(default_net(), prefix + text, code) == []


# --- identification ------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "hi", "ok", "yes pls", "thx", "ty", "07700 900123", "😀😀", "José María García Pérez", "Hannah Müller",
    "xarelto eliquis warfarin", "tom@example.com", "dry needling cost", "wat r u", "hlep plz", "au revoir", "",
])
def test_short_texts_names_numbers_and_emoji_are_english(text):
    assert identify(text) == "en"


@pytest.mark.parametrize("text,code", [
    ("¿Duele la punción seca?", "es"),
    ("Ile kosztuje jedna wizyta u fizjoterapeuty?", "pl"),
    ("kan ik een afspraak maken voor morgen", "nl"),
    ("wie lange dauert eine behandlung", "de"),
    ("Cât costă o ședință de dry needling?", "ro"),
    ("针灸和干针有什么区别", "zh"),
])
def test_other_languages_are_identified(text, code):
    assert identify(text) == code


def test_english_messages_are_identified_as_english():
    """Every English patient message of the NLU data and held-out sets.

    A misidentified English message would get "this assistant answers in English only" in
    another language (with the clinic's phone and 999) instead of its answer: a nuisance,
    not a hazard, but it must stay rare. The bound, 1 in 1,000, is above today's measured
    0 so a new release of lingua or a new batch of text-speak does not fail the build for
    one message, and far below anything a patient would meet twice.
    """
    net = default_net()
    messages = english_messages()
    assert len(messages) > 5000
    wrong = [m for m in messages if identify(m) != "en"]
    second_look = [m for m in messages if identify_for_safety(m, net) != "en"]
    print(f"\nidentify: {len(wrong)} of {len(messages)} English messages not 'en' ({len(wrong) / len(messages):.4%}); "
          f"with the red-flag second look: {len(second_look)}")
    assert len(wrong) / len(messages) <= MAX_MISIDENTIFIED
    assert len(second_look) / len(messages) <= MAX_MISIDENTIFIED


def test_identification_figures():
    """Recall on the catalogues' own messages and the latency of a call (printed, not asserted)."""
    net = default_net()
    for code in LANGUAGES:
        texts = [t for c, _, t in REPORTS + NOT_EMERGENCIES if c == code] + [t for c, t in THIRD_PARTY if c == code]
        plain = sum(identify(t) == code for t in texts)
        safe = sum(identify_for_safety(t, net) == code for t in texts)
        print(f"\n{code}: identify {plain}/{len(texts)}, with the second look {safe}/{len(texts)}", end="")
    messages = english_messages()[:3000]
    for name, call in (("identify", identify), ("identify_for_safety", lambda t: identify_for_safety(t, net))):
        times = []
        for text in messages:
            start = time.perf_counter()
            call(text)
            times.append(time.perf_counter() - start)
        times.sort()
        p50, p95 = statistics.median(times) * 1000, times[int(len(times) * 0.95)] * 1000
        print(f"\n{name}: p50 {p50:.3f} ms, p95 {p95:.3f} ms over {len(times)} English messages", end="")
