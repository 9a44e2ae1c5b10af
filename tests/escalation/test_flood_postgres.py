"""The flood on PostgreSQL: concurrent transactions agree on the cap (the source row's lock serialises the count)."""

from __future__ import annotations

from tests.escalation.flood_cases import check_flood, run_flood_with_a_real_patient
from tests.support.postgres import server, sessions  # noqa: F401 - pytest fixtures


async def test_a_concurrent_flood_on_postgresql_makes_at_most_the_cap_plus_one_grouped_case(sessions, tmp_path):  # noqa: F811
    check_flood(await run_flood_with_a_real_patient(sessions, tmp_path))
