"""Fixtures of the safety tests: the screen alone, and the metamorphic run shared by its tests."""

from __future__ import annotations

import pytest

from evaluation import metamorphic


@pytest.fixture(scope="session")
def screen() -> metamorphic.CachedScreen:
    """``bot.core.safety.screen.screen_text`` (spaCy pipeline + safety rules, no Rasa model), cached per text."""
    return metamorphic.CachedScreen(metamorphic.load_screen())


@pytest.fixture(scope="session")
def metamorphic_results(screen) -> dict[str, metamorphic.Result]:
    """Every variant screened once per test session (about 16,000 distinct messages)."""
    return metamorphic.run(screen)
