"""Helpers shared by the bench scripts: figures printed for people, the last line as JSON."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any


def report(title: str, figures: dict[str, Any], notes: list[str] | None = None) -> None:
    print(f"== {title} ==")
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"  {k:<{width}}  {v}")
    for n in notes or ():
        print(f"  note: {n}")
    sys.stdout.flush()
    print(json.dumps(figures))


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]
