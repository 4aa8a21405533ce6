"""Run one fetch pass through the library, as the CLI does, for tests."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aggregator.config import load_config
from aggregator.parser_pool import ParserPool
from aggregator.pipeline import Aggregator, PassReport


def run_pass(config_path: Path, database_url: str, *, force: bool = True,
             publish: bool = True, processes: bool = False) -> PassReport:
    """One pass over ``config_path``'s sources into ``database_url``.

    ``processes`` parses in real worker processes (as in production);
    otherwise in a thread, which is faster to start.
    """
    async def go() -> PassReport:
        aggregator = Aggregator(load_config(config_path),
                                parser_pool=None if processes else ParserPool(0))
        try:
            report = await aggregator.fetch_pass(force=force)
            if publish:
                report.published = await asyncio.to_thread(aggregator.publish)
            return report
        finally:
            await aggregator.aclose()
            aggregator.close()

    previous = os.environ.get("AGGREGATOR_DATABASE_URL")
    os.environ["AGGREGATOR_DATABASE_URL"] = database_url
    try:
        return asyncio.run(go())
    finally:
        if previous is None:
            del os.environ["AGGREGATOR_DATABASE_URL"]
        else:
            os.environ["AGGREGATOR_DATABASE_URL"] = previous
