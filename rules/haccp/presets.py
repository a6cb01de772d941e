"""Critical limits per food-safety region (DOMAIN.md §6, §7) and the rules they expand into."""

from __future__ import annotations

from dataclasses import dataclass

from rules.actions import AlarmAction
from rules.model import Rule, Suppression, Trigger, Unit

DEFROST_RECOVERY_S = 1800.0  # post-defrost alarm delay (Dixell dAd), 10–30 min
DEFROST_CAP_S = 45 * 60 + DEFROST_RECOVERY_S  # MdF + recovery: a stuck defrost still alarms
DOOR_GRACE_S = 900.0  # Dixell ALd 15 min; dot 20 min
DOOR_RECOVERY_S = 300.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_c: float | None
    min_c: float | None
    delay_s: float
    hysteresis: float = 1.0


@dataclass(frozen=True, slots=True)
class CoolingLimits:
    start_c: float
    stage1_c: float
    stage1_s: float
    final_c: float
    total_s: float


@dataclass(frozen=True, slots=True)
class ReheatLimits:
    target_c: float
    within_s: float


@dataclass(frozen=True, slots=True)
class RegionPreset:
    name: str
    units: dict[str, Limits]
    cooling: CoolingLimits
    reheat: ReheatLimits
    danger_zone: tuple[float, float]
    line_clean_days: float = 7.0


PRESETS: dict[str, RegionPreset] = {
    # UK: ≤8 °C is the legal limit (Schedule 4); ≥63 °C hot holding; no legal cooling time,
    # common practice is below 8 °C within 90 min.
    "uk": RegionPreset(
        "UK FSA",
        {
            "cold_hold": Limits(8.0, None, 1800.0),
            "freezer": Limits(-15.0, None, 1800.0, 2.0),
            "hot_hold": Limits(None, 63.0, 1800.0),
            "cellar": Limits(13.0, 11.0, 3600.0, 0.5),
        },
        CoolingLimits(63.0, 21.0, 2 * 3600.0, 8.0, 6 * 3600.0),
        ReheatLimits(75.0, 2 * 3600.0),
        (5.0, 63.0),
    ),
    # US FDA Food Code: 41 °F / 5 °C cold, 135 °F / 57 °C hot, cooling 3-501.14.
    "us": RegionPreset(
        "US FDA Food Code",
        {
            "cold_hold": Limits(5.0, None, 1800.0),
            "freezer": Limits(-15.0, None, 1800.0, 2.0),
            "hot_hold": Limits(None, 57.0, 1800.0),
            "cellar": Limits(13.0, 11.0, 3600.0, 0.5),
        },
        CoolingLimits(57.0, 21.0, 2 * 3600.0, 5.0, 6 * 3600.0),
        ReheatLimits(74.0, 2 * 3600.0),
        (5.0, 57.0),
    ),
}


def preset(region: str) -> RegionPreset:
    return PRESETS.get(region, PRESETS["uk"])


def unit_limits(unit: Unit, region: str) -> Limits | None:
    base = preset(region).units.get(unit.kind)
    if base is None:
        return None
    return Limits(
        unit.max_c if unit.max_c is not None else base.max_c,
        unit.min_c if unit.min_c is not None else base.min_c,
        unit.delay_s if unit.delay_s is not None else base.delay_s,
        base.hysteresis,
    )


def _suppressions(unit: Unit) -> tuple[Suppression, ...]:
    out: list[Suppression] = []
    if unit.defrost_point:
        out.append(
            Suppression(
                "defrost", DEFROST_CAP_S, unit.device, unit.defrost_point, DEFROST_RECOVERY_S
            )
        )
    if unit.door_point:
        out.append(Suppression("door", DOOR_GRACE_S, unit.device, unit.door_point, DOOR_RECOVERY_S))
    if unit.power_up_s > 0:
        out.append(Suppression("power_up", unit.power_up_s, unit.device))
    return tuple(out)


def expand_units(units: tuple[Unit, ...], region: str) -> tuple[Rule, ...]:
    """The alarm rules a unit's limits imply (cooling, reheat and line cleaning are tracked by
    the HACCP monitor instead)."""
    rules: list[Rule] = []
    for u in units:
        lim = unit_limits(u, region)
        if lim is None:
            continue
        name = u.label or u.id
        sup = _suppressions(u) if u.kind in ("cold_hold", "freezer") else ()
        if lim.max_c is not None:
            msg = f"{name} above {lim.max_c:g} °C for {lim.delay_s / 60:g} min"
            rules.append(
                Rule(
                    f"{u.id}-high",
                    Trigger(
                        "threshold",
                        u.device,
                        u.point,
                        above=lim.max_c,
                        clear=lim.max_c - lim.hysteresis,
                        for_s=lim.delay_s,
                    ),
                    (AlarmAction(message=msg),),
                    description=f"HACCP {u.kind} preset",
                    priority="high",
                    suppress=sup,
                    unit=u.id,
                )
            )
        if lim.min_c is not None:
            msg = f"{name} below {lim.min_c:g} °C for {lim.delay_s / 60:g} min"
            rules.append(
                Rule(
                    f"{u.id}-low",
                    Trigger(
                        "threshold",
                        u.device,
                        u.point,
                        below=lim.min_c,
                        clear=lim.min_c + lim.hysteresis,
                        for_s=lim.delay_s,
                    ),
                    (AlarmAction(message=msg),),
                    description=f"HACCP {u.kind} preset",
                    priority="high",
                    unit=u.id,
                )
            )
    return tuple(rules)
