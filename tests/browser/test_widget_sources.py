"""Under a curated answer the widget shows its sources (links in a new tab), version and review date.

The socket.io channel adds ``kb: {title, version, reviewed, sources: [{name, url}]}`` to the
last part of an FAQ answer (:class:`bot.assistant.channels.socketio.PatientSocketIOOutput`,
resolved by :func:`bot.core.knowledge.citations.answer_citation`). Most tests script that
payload with :class:`conftest.FakeRasa`, built with the same resolver from the real curated
answer and source catalogue; the last asks the real assistant on the demo page.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from bot.core.clinic import load_clinic
from bot.core.knowledge import catalog
from bot.core.knowledge.citations import answer_citation
from tests.browser.conftest import DESKTOP, REPO_ROOT

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
KB = catalog.load()
VALUES = load_clinic(REPO_ROOT / "clinic.yml").template_values()
QUESTION = "What is dry needling?"
NAME = "utter_faq/what_is_dry_needling"
#: An answer citing focusphysio_faq, the catalogue's one plain-http source.
WITH_HTTP = "utter_faq/preparation"
NEW_TAB = " (opens in a new tab)"


def line_of(name: str) -> dict:
    """The ``kb`` key the channel sends for ``name``."""
    answer = KB.answers[name]
    meta = {"title": answer.title, "version": answer.version, "reviewed": answer.reviewed.isoformat(),
            "sources": list(answer.sources)}
    return answer_citation(meta, KB.sources)


def payloads(name: str, parts: int = 1) -> list[dict]:
    """The answer's ``bot_uttered`` parts as the channel sends them: short on the first, kb on the last."""
    answer = KB.answers[name]
    text = answer.text.format_map(VALUES)
    words = text.split()
    size = -(-len(words) // parts)
    out: list[dict] = [{"text": " ".join(words[i : i + size])} for i in range(0, len(words), size)]
    out[0]["short"] = {"text": answer.short.format_map(VALUES), "parts": len(out)}
    for number, payload in enumerate(out[1:], start=2):
        payload["short"] = {"part": number}
    out[-1]["kb"] = line_of(name)
    return out


def expected_text(name: str, reviewed: str = "7 Dec 2026") -> str:
    answer = KB.answers[name]
    names = []
    for source_id in answer.sources:
        source = KB.sources[source_id]
        names.append(source.name + (NEW_TAB if source.url.startswith("https://") else ""))
    return f"Sources: {'; '.join(names)} · answer v{answer.version}, reviewed {reviewed}"


def ask(page: Page, stub_chat, fake_rasa, viewport: dict, answers: dict, **data: str):
    page.set_viewport_size(viewport)
    fake_rasa.reply = lambda message: answers.get(message, [])
    chat = stub_chat(initial_payload="", **data).open()
    chat.send(next(iter(answers)))
    return chat


def test_a_curated_answer_shows_its_sources_with_working_links_version_and_review_date(page, stub_chat, fake_rasa):
    chat = ask(page, stub_chat, fake_rasa, DESKTOP, {QUESTION: payloads(NAME)})
    line = page.locator(".cw-log .cw-bot p.cw-sources")
    expect(line).to_have_count(1)
    expect(line).to_have_text(expected_text(NAME))
    assert KB.answers[NAME].reviewed.isoformat() == "2026-12-07", "the expected date above"
    expect(line.locator("time")).to_have_attribute("datetime", "2026-12-07")
    links = line.locator("a")
    cited = [KB.sources[s] for s in KB.answers[NAME].sources]
    expect(links).to_have_count(len(cited))
    for i, source in enumerate(cited):
        expect(links.nth(i)).to_have_attribute("href", source.url)
        expect(links.nth(i)).to_have_attribute("target", "_blank")
        expect(links.nth(i)).to_have_attribute("rel", "noopener noreferrer")
    expect(links.first).to_have_accessible_name(f"Chartered Society of Physiotherapy{NEW_TAB}")
    # The line sits under the answer's text, above its time.
    row = page.locator(".cw-log .cw-bot").filter(has=page.locator("p.cw-sources"))
    expect(row.locator(".cw-bubble")).to_have_text(KB.answers[NAME].text.format_map(VALUES))
    assert row.evaluate("r => [...r.children].map(c => c.className)")[-2:] == ["cw-sources", "cw-meta"]

    # A link opens the source in a new tab, with no way back to the chat page (noopener).
    page.context.route("https://www.csp.org.uk/**", lambda route: route.fulfill(body="<title>CSP</title>CSP page"))
    with page.expect_popup() as popup_info:
        links.first.click()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url == KB.sources["csp_dn"].url
    assert popup.evaluate("() => window.opener") is None
    popup.close()
    expect(chat.panel).to_be_visible()

    # Replies that are not curated answers get no line.
    fake_rasa.reply = lambda message: [{"text": "Hello! How can I help?"}]
    chat.send("hi")
    expect(chat.bot.last).to_have_text("Hello! How can I help?")
    expect(page.locator(".cw-log p.cw-sources")).to_have_count(1)


def test_a_source_without_an_https_url_is_named_but_never_linked(page, stub_chat, fake_rasa):
    hostile = {
        "title": "x",
        "version": 1,
        "reviewed": "2026-12-07",
        "sources": [
            {"name": "<img src=x onerror=\"window.pwned=1\">Script", "url": "javascript:window.pwned=1"},
            {"name": "Plain http", "url": "http://example.org/page"},
            {"name": "Data", "url": "data:text/html,<b>x</b>"},
            {"name": "Good", "url": "https://example.org/good"},
            {"url": "https://example.org/nameless"},
            "not an object",
        ],
    }
    answers = {
        QUESTION: payloads(WITH_HTTP),
        "hostile": [{"text": "An answer.", "kb": hostile}],
        "broken": [{"text": "Another.", "kb": {"sources": "csp_dn"}}, {"text": "More.", "kb": "just a string"}],
    }
    chat = ask(page, stub_chat, fake_rasa, DESKTOP, answers)
    focus = KB.sources["focusphysio_faq"]
    assert focus.url.startswith("http://") and "focusphysio_faq" in KB.answers[WITH_HTTP].sources
    first = page.locator(".cw-log p.cw-sources").first
    expect(first).to_have_text(expected_text(WITH_HTTP))
    expect(first.get_by_text(focus.name)).to_have_count(1)
    expect(first.locator("a", has_text=focus.name)).to_have_count(0)
    expect(first.locator("a")).to_have_count(len(KB.answers[WITH_HTTP].sources) - 1)

    chat.send("hostile")
    line = page.locator(".cw-log p.cw-sources").nth(1)
    expect(line).to_have_text(
        "Sources: <img src=x onerror=\"window.pwned=1\">Script; Plain http; Data; Good" + NEW_TAB
        + " · answer v1, reviewed 7 Dec 2026"
    )
    expect(line.locator("a")).to_have_count(1)
    expect(line.locator("a")).to_have_attribute("href", "https://example.org/good")
    expect(page.locator(".cw-log img")).to_have_count(0)
    hrefs = page.eval_on_selector_all(".cw-log .cw-sources a", "as => as.map(a => a.href)")
    assert all(href.startswith("https://") for href in hrefs)

    chat.send("broken")
    expect(chat.bot.last).to_have_text("More.")
    expect(page.locator(".cw-log p.cw-sources")).to_have_count(2)
    assert page.evaluate("() => window.pwned") is None


def test_on_a_phone_the_line_stands_under_the_short_and_the_full_answer(page, stub_chat, fake_rasa):
    chat = ask(page, stub_chat, fake_rasa, PHONE, {QUESTION: payloads(NAME, parts=3)})
    short_line = page.locator(".cw-log .cw-short p.cw-sources")
    full_lines = page.locator(".cw-log .cw-full p.cw-sources")
    expect(short_line).to_be_visible()
    expect(short_line).to_have_text(expected_text(NAME))
    expect(full_lines).to_have_count(1)
    expect(full_lines).to_be_hidden()
    page.get_by_role("button", name="Read the full answer").click()
    expect(short_line).to_be_hidden()
    expect(full_lines).to_be_visible()
    expect(full_lines).to_have_text(expected_text(NAME))
    # Under the last of the three parts only.
    rows = page.locator(".cw-log .cw-full .cw-bot")
    expect(rows).to_have_count(3)
    expect(rows.nth(2).locator("p.cw-sources")).to_have_count(1)

    # Kept across a reload and a change of width.
    page.reload()
    expect(chat.panel).to_be_visible()
    expect(full_lines).to_be_visible()
    page.set_viewport_size(DESKTOP)
    expect(page.locator(".cw-log p.cw-sources")).to_have_count(1)
    expect(page.locator(".cw-log p.cw-sources")).to_have_text(expected_text(NAME))


def test_the_line_speaks_the_widgets_language(page, stub_chat, fake_rasa):
    ask(page, stub_chat, fake_rasa, DESKTOP, {QUESTION: payloads(NAME)}, lang="de")
    line = page.locator(".cw-log p.cw-sources")
    expect(line).to_contain_text("Quellen: Chartered Society of Physiotherapy (öffnet in einem neuen Tab);")
    expect(line).to_contain_text(" · Antwortversion 2, geprüft am 7. Dez. 2026")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_no_violations_with_the_sources_line(page, stub_chat, fake_rasa, viewport):
    chat = ask(page, stub_chat, fake_rasa, viewport, {QUESTION: payloads(NAME, parts=2)})
    expect(page.locator(".cw-log p.cw-sources:visible")).to_have_count(1)
    violations = chat.axe_violations()
    assert violations == [], "\n".join(f"{v['id']}: {v['help']}" for v in violations)
    if viewport is PHONE:  # and with the full answer shown
        page.get_by_role("button", name="Read the full answer").click()
        expect(page.locator(".cw-log .cw-full p.cw-sources")).to_be_visible()
        violations = chat.axe_violations()
        assert violations == [], "\n".join(f"{v['id']}: {v['help']}" for v in violations)


@pytest.mark.e2e
def test_the_real_assistant_sends_the_sources_of_its_answer(demo_chat):
    page = demo_chat.page
    page.set_viewport_size(DESKTOP)
    demo_chat.open()
    expect(demo_chat.bot.first).to_contain_text("automated assistant")
    demo_chat.send("does it hurt?")
    line = page.locator(".cw-log p.cw-sources")
    expect(line).to_have_text(expected_text("utter_faq/does_it_hurt"), timeout=60_000)
    hrefs = line.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    cited = [KB.sources[s].url for s in KB.answers["utter_faq/does_it_hurt"].sources]
    assert hrefs == [url for url in cited if url.startswith("https://")]


def test_a_line_read_back_from_storage_is_checked_again(page, stub_chat, fake_rasa):
    chat = ask(page, stub_chat, fake_rasa, DESKTOP, {QUESTION: payloads(NAME)})
    expect(page.locator(".cw-log p.cw-sources a")).to_have_count(len(KB.answers[NAME].sources))
    page.evaluate(
        """() => {
          const key = Object.keys(sessionStorage).find(k => k.startsWith('chat-widget:'));
          const st = JSON.parse(sessionStorage.getItem(key));
          const answer = st.msgs[st.msgs.length - 1];
          answer.kb = {v: "<b>9</b>", r: "yesterday", src: [{n: "Tampered", u: "javascript:window.pwned=1"}, "x"]};
          st.msgs.push({...answer, id: st.n + 1, kb: {src: "not a list"}});
          st.n += 1;
          sessionStorage.setItem(key, JSON.stringify(st));
        }"""
    )
    page.reload()
    expect(chat.panel).to_be_visible()
    expect(chat.bot).to_have_count(2)
    expect(page.locator(".cw-log p.cw-sources")).to_have_text(["Sources: Tampered"])
    expect(page.locator(".cw-log p.cw-sources a")).to_have_count(0)
    assert page.evaluate("() => window.pwned") is None
