"""Property tests for the command argument boundaries: `ARG=VALUE` on the command line and the
OPC-UA method arguments a person may give (text, enumerated, numeric)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from beerflow_edge.cli import parse_assignment
from drivers.errors import CommandRejected
from drivers.opcua import codec
from firmware_profiles.loader import load_library

COMBI = load_library().get("opc30200-combi-steamer")
START = next(c for c in COMBI.opcua.commands if c.name == "start_program")  # type: ignore[union-attr]


@given(st.text(max_size=40))
def test_any_assignment_parses_or_is_refused(text):
    try:
        key, value = parse_assignment(text)
    except ValueError:
        assert "=" not in text or not text.partition("=")[0].strip()
        return
    assert key and "=" not in key
    assert isinstance(value, bool | int | float | str)


@given(st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip(number):
    assert parse_assignment(f"x={number!r}") == ("x", number)


_VALUES = st.one_of(st.text(max_size=80), st.integers(-(2**40), 2**40), st.floats(), st.booleans())


@given(st.dictionaries(st.sampled_from([a.name for a in START.args] + ["extra"]), _VALUES))
def test_method_arguments_are_checked_or_refused_never_crash(args):
    try:
        out = codec.call_args(START, args)
    except CommandRejected:
        return
    by_name = dict(zip([a.name for a in START.args], out, strict=True))
    program, _ = by_name["program"]
    assert isinstance(program, str) and program.strip() and program.isprintable()
    mode, _ = by_name["mode"]
    assert mode in (4, 5, 6, 7)
    temperature, _ = by_name["temperature"]
    assert math.isfinite(temperature) and 30.0 <= temperature <= 300.0
