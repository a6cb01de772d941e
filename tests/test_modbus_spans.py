"""The learnt read plan: splitting refused blocks, and its file format (property tests)."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import CodecError
from drivers.modbus.codec import plan_reads
from drivers.modbus.spans import (
    LearntPlan,
    block_of,
    decode_plan,
    encode_plan,
    load_plan,
    save_plan,
    split,
)
from firmware_profiles.loader import load_library


def _modbus_profiles():
    return [p for p in load_library() if p.modbus is not None]


@pytest.mark.parametrize("profile", _modbus_profiles(), ids=lambda p: p.id)
def test_splitting_every_block_ends_in_single_points_covering_each_once(profile):
    for block in plan_reads(profile.modbus):
        todo, leaves = [block], []
        while todo:
            b = todo.pop()
            halves = split(b)
            if halves is None:
                leaves.append(b)
                continue
            for h in halves:
                assert h.count < b.count or len(h.points) < len(b.points)
                assert b.start <= h.start and h.start + h.count <= b.start + b.count
            todo.extend(halves)
        assert sorted(p.name for leaf in leaves for p in leaf.points) == sorted(
            p.name for p in block.points
        )
        assert all(len(leaf.points) == 1 for leaf in leaves)


def test_the_cut_falls_in_the_widest_hole():
    xr = next(p for p in _modbus_profiles() if p.id == "dixell-xr77u")
    coils = next(b for b in plan_reads(xr.modbus) if b.table == "coil")
    assert len(coils.points) >= 3
    left, right = split(coils)  # type: ignore[misc]
    assert left.start + left.count <= right.start


@given(st.data())
def test_a_plan_round_trips_through_its_file_format(data):
    profile = data.draw(st.sampled_from(_modbus_profiles()))
    points = list(profile.modbus.points)
    names = data.draw(st.permutations([p.name for p in points]))
    unreadable = names[: data.draw(st.integers(0, min(2, len(names) - 1)))]
    rest = [p for p in points if p.name not in unreadable]
    blocks = []
    for table in {p.table for p in rest}:
        of_table = [p for p in rest if p.table == table]
        cut = data.draw(st.integers(1, len(of_table)))
        blocks += [block_of(of_table[:cut])] + (
            [block_of(of_table[cut:])] if of_table[cut:] else []
        )
    plan = LearntPlan(tuple(blocks), tuple(sorted(unreadable)))
    again = decode_plan(encode_plan(plan, points), points)
    assert again == plan


@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_a_plan_none_or_a_codec_error(data):
    points = list(_modbus_profiles()[0].modbus.points)
    try:
        plan = decode_plan(data, points)
    except CodecError:
        return
    assert plan is None or isinstance(plan, LearntPlan)


def test_a_plan_for_another_point_set_is_ignored(tmp_path):
    a, b = _modbus_profiles()[:2]
    path = str(tmp_path / "spans" / "dev.json")
    plan = LearntPlan(tuple(plan_reads(a.modbus)))
    save_plan(path, plan, a.modbus.points)
    assert load_plan(path, a.modbus.points) == plan
    assert load_plan(path, b.modbus.points) is None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
