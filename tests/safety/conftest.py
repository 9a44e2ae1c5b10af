"""Fixtures of the safety tests: the screen alone, and the metamorphic run shared by its tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from evaluation import metamorphic


@pytest.fixture(scope="session")
def screen() -> metamorphic.CachedScreen:
    """``bot.core.safety.screen.screen_text`` (spaCy pipeline + safety rules, no Rasa model), cached per text."""
    return metamorphic.CachedScreen(metamorphic.load_screen())


#: The invariants screened together. The first three are the ordinary variants whose false
#: escalations are counted as one rate (tests/safety/test_metamorphic_ordinary.py); the rest
#: are tests/safety/test_metamorphic.py's. Each module is one xdist group (tests/conftest.py),
#: so under ``make test`` the two halves of the run go to whichever workers are free.
SCREENED_TOGETHER = (("a", "c1", "d"), ("b", "c2", "e", "f1", "f2"))


class MetamorphicResults(Mapping):
    """The metamorphic run's results by invariant, each group screened when first asked for."""

    def __init__(self, screen: metamorphic.CachedScreen) -> None:
        self._screen = screen
        self._results: dict[str, metamorphic.Result] = {}

    def __getitem__(self, key: str) -> metamorphic.Result:
        if key not in self._results:
            group = next(keys for keys in SCREENED_TOGETHER if key in keys)
            self._results.update(metamorphic.run(self._screen, keys=group))
        return self._results[key]

    def __iter__(self) -> Iterator[str]:
        return iter(key for keys in SCREENED_TOGETHER for key in keys)

    def __len__(self) -> int:
        return sum(len(keys) for keys in SCREENED_TOGETHER)


@pytest.fixture(scope="session")
def metamorphic_results(screen) -> MetamorphicResults:
    """Every variant screened once per test session (about 16,000 distinct messages), by group."""
    return MetamorphicResults(screen)
