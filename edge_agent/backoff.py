"""Capped exponential backoff with full jitter, so a fleet of reconnects never synchronises."""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.base = base
        self.cap = cap
        self.factor = factor
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.cap, self.base * self.factor**self.attempt)
        self.attempt += 1
        return self._rng.uniform(self.base / 2, max(self.base / 2, ceiling))

    def reset(self) -> None:
        self.attempt = 0
