"""Shared fixtures: every test that takes `each_path` runs once per ISA path
this machine can run, with that path forced through lowp.set_path."""

from __future__ import annotations

from pathlib import Path

import pytest

import lowp

EDGE_TABLE = Path(__file__).parent / "data" / "fixedpoint_cases.txt"


@pytest.fixture(params=lowp.cpu_info()["paths"])
def each_path(request):
    saved = lowp.get_path()
    lowp.set_path(request.param)
    try:
        yield request.param
    finally:
        lowp.set_path(saved)


@pytest.fixture
def threads():
    """Restores the thread count a test changes."""
    saved = lowp.get_num_threads()
    yield
    lowp.set_num_threads(saved)


def read_edge_table() -> dict[str, list[tuple]]:
    """The fixed-point edge table (also read by tests/cpp), grouped by kind."""
    table: dict[str, list[tuple]] = {}
    for line in EDGE_TABLE.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        kind, *fields = line.split()
        if kind == "quantize_multiplier":
            row: tuple = (float.fromhex(fields[0]), int(fields[1]), int(fields[2]))
        else:
            row = tuple(int(f) for f in fields)
        table.setdefault(kind, []).append(row)
    return table
