"""The refrigeration simulator's physics: deterministic, cycling, defrosting, faultable."""

from __future__ import annotations

import itertools

from simulators.modbus.fridge_model import FridgeModel, FridgeParams

T0 = 1_750_000_000.0


def trace(model: FridgeModel, hours: float, step: float = 30.0):
    out = []
    t = T0
    while t < T0 + hours * 3600:
        t += step
        s = model.advance_to(t)
        out.append((t, s.room, s.compressor_on, s.defrost_active, s.door_open))
    return out


def test_same_seed_same_clock_same_values():
    assert trace(FridgeModel(T0, seed=5), 3) == trace(FridgeModel(T0, seed=5), 3)
    assert trace(FridgeModel(T0, seed=5), 3) != trace(FridgeModel(T0, seed=6), 3)


def test_thermostat_cycles_the_compressor_around_the_setpoint():
    tr = trace(FridgeModel(T0, seed=1, params=FridgeParams(defrost_interval_s=1e9)), 4)
    switches = sum(1 for a, b in itertools.pairwise(tr) if a[2] != b[2])
    assert switches >= 6  # several on/off cycles in 4 hours
    temps = [x[1] for x in tr[len(tr) // 4 :]]
    assert min(temps) > 1.0 and max(temps) < 8.0  # held near 3 °C (doors add bumps)


def test_defrost_every_interval_ends_on_evaporator_temperature():
    p = FridgeParams(defrost_interval_s=4 * 3600, door_openings_per_hour=0)
    tr = trace(FridgeModel(T0, seed=2, params=p), 12, step=10)
    starts = [t for (t, *_r), (_, _, _, d, _) in itertools.pairwise(tr) if d and not _r[2]]
    assert len(starts) >= 2
    assert all(b - a >= 4 * 3600 - 60 for a, b in itertools.pairwise(starts))
    lengths = []
    on = None
    for t, _, _, d, _ in tr:
        if d and on is None:
            on = t
        elif not d and on is not None:
            lengths.append(t - on)
            on = None
    assert lengths and all(60 <= x <= p.defrost_max_s + 10 for x in lengths)


def test_a_dead_compressor_lets_the_cabinet_warm_up():
    m = FridgeModel(T0, seed=3)
    m.advance_to(T0 + 3600)
    m.compressor_dead = True
    m.advance_to(T0 + 4 * 3600)
    assert m.state.room > 8.0
    assert m.state.alarm  # the controller's own high-temperature alarm


def test_a_stuck_defrost_never_ends():
    p = FridgeParams(defrost_interval_s=600, door_openings_per_hour=0)
    m = FridgeModel(T0, seed=4, params=p)
    m.defrost_stuck = True
    m.advance_to(T0 + 4 * 3600)
    assert m.state.defrost_active
