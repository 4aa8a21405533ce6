"""Shared fixtures: databases (SQLite and a real PostgreSQL) and seed blogs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get(
    "AGGREGATOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_schema_url() -> Iterator[str]:
    """A throw-away schema in the test database, so tests never see each other's rows."""
    import sqlalchemy

    if os.environ.get("AGGREGATOR_SKIP_POSTGRES") == "1":
        if os.environ.get("AGGREGATOR_REQUIRE_POSTGRES") == "1":  # CI: never skip these
            pytest.fail("AGGREGATOR_SKIP_POSTGRES=1 but AGGREGATOR_REQUIRE_POSTGRES=1 is set")
        pytest.skip(reason="AGGREGATOR_SKIP_POSTGRES=1 is set")
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({error.orig}); start it, point "
            "AGGREGATOR_TEST_POSTGRES_URL at one, or set AGGREGATOR_SKIP_POSTGRES=1"
        )
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on both back ends."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aggregator.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@pytest.fixture(scope="session")
def corpus_dir(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    """feedparser's own test corpus, from its sdist on the package index (cached)."""
    from corpus_support import CorpusUnavailableError, corpus_tests_dir

    cache = getattr(request.config, "cache", None)
    cache_dir = cache.mkdir("feedparser-corpus") if cache else tmp_path_factory.mktemp("corpus")
    try:
        return corpus_tests_dir(cache_dir)
    except CorpusUnavailableError as error:
        reason = str(error)
    # Failed, not skipped: CI reaches the index, and a skip would hide a lost corpus.
    pytest.fail(reason, pytrace=False)
