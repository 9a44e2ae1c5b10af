"""The demo page under its Content-Security-Policy: the widget works and nothing is refused.

A policy that blocked part of the widget (its stylesheet, a language file, the
connection to Rasa) would not always break a conversation visibly, so the
browser's own violation reports are collected and must stay empty.
"""

from __future__ import annotations

import pytest
from tests.browser.conftest import Chat
from tests.browser.test_widget_live import ask, greeted

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""


def test_a_conversation_on_the_demo_page_breaks_no_policy_rule(page, live_stack):
    page.add_init_script(RECORD_VIOLATIONS)
    response = page.goto(live_stack.web_url + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    chat = greeted(Chat(page))

    ask(chat, "does it hurt?")

    assert page.evaluate("() => window.__cspViolations") == []
    styled = page.evaluate("() => getComputedStyle(document.querySelector('.brand')).fontWeight")
    assert styled == "700"  # the demo stylesheet (a file now, not inline) applies


def test_the_policy_blocks_an_injected_inline_script(page, live_stack):
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(live_stack.web_url + "/")

    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = true';"
        " document.body.appendChild(s); }"
    )

    assert page.evaluate("() => window.__ran === true") is False
    assert any(v.startswith("script-src") for v in page.evaluate("() => window.__cspViolations"))
