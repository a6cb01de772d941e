"""Repeated adverts of one measurement are dropped (BTHome packet-id rules, DOMAIN.md §1.1).

A sensor repeats each measurement several times (pvvx: every 2.5 s for a 10 s measurement).
Within `window_s` of the last advert heard, an id equal to or behind the last one is a repeat;
a new id must be less than 64 ahead (mod 256). After a silence longer than the window any id
is accepted (the sensor may have rebooted). Formats without a packet id compare the payload,
and an unchanged payload is published again once per window (a steady fridge still logs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Deduper:
    window_s: float
    last_id: int | None = None
    last_payload: bytes | None = None
    last_seen_payload: bytes | None = None
    last_heard: float | None = None
    last_accepted: float | None = None
    dropped: int = 0

    def repeats(self, now: float, payload: bytes) -> bool:
        """The same payload bytes as the last decoded advert, within the window of the last
        accepted one: a repeat of one measurement, dropped before it reaches the sensor's
        kept parser (which would take it for an old packet). After the window the bytes are
        decoded again, so a steady sensor's unchanged payload is still published once per
        window."""
        fresh = self.last_accepted is not None and now - self.last_accepted < self.window_s
        if fresh and payload == self.last_seen_payload:
            self.last_heard = now
            self.dropped += 1
            return True
        self.last_seen_payload = payload
        return False

    def accept(self, now: float, packet_id: int | None, payload: bytes) -> bool:
        recent = self.last_heard is not None and now - self.last_heard <= self.window_s
        self.last_heard = now
        if packet_id is not None:
            if recent and self.last_id is not None:
                ahead = (packet_id - self.last_id) % 256
                if ahead == 0 or ahead >= 64:
                    self.dropped += 1
                    return False
            self.last_id = packet_id
            self.last_accepted = now
            return True
        fresh = self.last_accepted is not None and now - self.last_accepted < self.window_s
        if fresh and payload == self.last_payload:
            self.dropped += 1
            return False
        self.last_payload = payload
        self.last_accepted = now
        return True
