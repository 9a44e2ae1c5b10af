"""Any query string gives the queue a filter or a clear refusal (property test; runs in .venv-web)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.dashboard.staff import cases
from bot.dashboard.staff.cases import CaseFilter, InvalidInput

KEYS = st.sampled_from(["status", "reason", "priority", "channel", "from", "to", "assignee", "mine", "page",
                        "per_page", "other"])
VALUES = st.one_of(st.text(max_size=30), st.sampled_from(["new", "urgent", "2026-03-02", "me", "none", "1", "0",
                                                          "2026-03-02T10:00:00+01:00", "99999999999"]))


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, st.one_of(VALUES, st.lists(VALUES, max_size=3)), max_size=6))
def test_any_query_string_gives_a_filter_or_a_clear_refusal(params):
    try:
        filters = CaseFilter.from_params(params, tz=ZoneInfo("Europe/London"))
        cases.page_params(params)
    except InvalidInput as exc:
        assert str(exc)
    else:
        assert all(moment is None or moment.tzinfo is not None for moment in (filters.created_from, filters.created_to))
