"""The sources line beside a curated answer: names from the catalogue, and only https URLs linked."""

from __future__ import annotations

import pytest

from bot.core.knowledge import catalog
from bot.core.knowledge.citations import answer_citation, https_url, source_name

#: An FAQ answer citing focusphysio_faq, whose catalogued URL is plain http.
HTTP_CITED = "utter_faq/preparation"


def source(source_id: str, url: str, name: str = "") -> catalog.Source:
    return catalog.Source(id=source_id, citation=f"{source_id} citation. More.", url=url, grade="verified", name=name)


@pytest.mark.parametrize(
    "url",
    [
        "http://www.focusphysio.co.nz/blog",
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https:relative/path",
        "https:///no-host",
        "//example.org/scheme-relative",
        " https://example.org/leading-space",
        "https://example.org/with space",
        "https://example.org/\nnewline",
        "ftp://example.org/file",
        "",
        None,
        42,
    ],
)
def test_a_url_that_is_not_https_is_never_given(url):
    assert https_url(url) == ""


def test_an_https_url_is_given_unchanged():
    assert https_url("https://www.nice.org.uk/guidance/ng193") == "https://www.nice.org.uk/guidance/ng193"
    assert https_url("HTTPS://www.nice.org.uk/guidance/ng193") == "HTTPS://www.nice.org.uk/guidance/ng193"


def test_a_source_without_an_https_url_is_named_but_not_linked():
    sources = {
        "good": source("good", "https://example.org/a", "Good source"),
        "plain": source("plain", "http://example.org/b", "Plain http source"),
        "script": source("script", "javascript:alert(1)", "Script source"),
    }
    citation = answer_citation(
        {"title": "T", "version": 3, "reviewed": "2026-12-07", "sources": ["good", "plain", "script", "unknown"]},
        sources,
    )
    assert citation == {
        "title": "T",
        "version": 3,
        "reviewed": "2026-12-07",
        "sources": [
            {"name": "Good source", "url": "https://example.org/a"},
            {"name": "Plain http source"},
            {"name": "Script source"},
        ],
    }


def test_the_real_http_source_of_an_faq_answer_is_not_linked():
    kb = catalog.load()
    answer = kb.answers[HTTP_CITED]
    assert "focusphysio_faq" in answer.sources
    assert kb.sources["focusphysio_faq"].url.startswith("http://"), "the catalogue's one http URL (this test's premise)"
    citation = answer_citation({"sources": list(answer.sources)}, kb.sources)
    by_name = {entry["name"]: entry for entry in citation["sources"]}
    assert "url" not in by_name[kb.sources["focusphysio_faq"].name]
    assert all(entry.get("url", "https://").startswith("https://") for entry in citation["sources"])
    assert len(citation["sources"]) == len(answer.sources)


def test_nothing_to_cite_gives_no_line():
    sources = {"good": source("good", "https://example.org/a", "Good")}
    assert answer_citation(None, sources) is None
    assert answer_citation("kb", sources) is None
    assert answer_citation({"sources": []}, sources) is None
    assert answer_citation({"sources": ["unknown"]}, sources) is None
    assert answer_citation({"sources": "good"}, sources) is None


def test_a_source_without_a_name_is_called_by_its_citations_first_sentence():
    assert source_name(source("x", "https://example.org")) == "x citation"
    assert source_name(source("x", "https://example.org", "Named")) == "Named"


def test_every_source_an_faq_answer_cites_has_a_name():
    kb = catalog.load()
    for answer in kb.faq.values():
        for source_id in answer.sources:
            assert kb.sources[source_id].name, f"{answer.name} cites {source_id}, which has no name"
