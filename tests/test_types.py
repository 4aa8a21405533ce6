"""The stage types survive pickling field for field (they cross the parser workers' pipe)."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from aggregator import types

FROZEN_TYPES = [value for value in vars(types).values()
                if isinstance(value, type) and dataclasses.is_dataclass(value)
                and value.__module__ == types.__name__]


def test_every_stage_type_is_covered() -> None:
    assert {cls.__name__ for cls in FROZEN_TYPES} >= {
        "NormalizedEntry", "ParsedFeed", "PublishedEntry", "SiteInfo", "SourceInfo"}


@pytest.mark.parametrize("cls", FROZEN_TYPES, ids=lambda cls: cls.__name__)
def test_pickling_keeps_every_field_in_its_place(cls: type) -> None:
    # A distinct value per field: a value landing in the wrong field shows.
    instance = object.__new__(cls)
    for number, item in enumerate(dataclasses.fields(cls)):
        object.__setattr__(instance, item.name, (item.name, number))
    for protocol in (2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL):
        copy = pickle.loads(pickle.dumps(instance, protocol=protocol))
        assert type(copy) is cls
        assert dataclasses.astuple(copy) == dataclasses.astuple(instance)
        assert copy == instance
