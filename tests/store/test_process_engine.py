"""One engine per database in a process: the Rasa server's channels share one pool."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from bot.core.store.db import close_process_engines, process_engine


def test_every_part_of_a_process_gets_the_same_engine_for_a_database(db_url):
    async def run():
        first = process_engine(db_url)
        same = process_engine(db_url.replace("sqlite://", "sqlite+aiosqlite://"))  # either form of the URL
        async with first.connect() as connection:
            assert (await connection.execute(text("select 1"))).scalar() == 1
        await close_process_engines()
        return first, same, process_engine(db_url)

    first, same, after_close = asyncio.run(run())
    assert first is same
    assert after_close is not first  # closing forgets it: the next user gets a fresh pool


def test_each_event_loop_gets_its_own_engine(db_url):
    first_loop, second_loop = asyncio.new_event_loop(), asyncio.new_event_loop()

    async def engine():
        return process_engine(db_url)

    try:
        first = first_loop.run_until_complete(engine())
        assert first_loop.run_until_complete(engine()) is first
        assert second_loop.run_until_complete(engine()) is not first
    finally:
        for loop in (first_loop, second_loop):
            loop.run_until_complete(close_process_engines())
            loop.close()
