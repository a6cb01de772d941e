"""Request bodies and fields checked at the boundary: every bad value is a 400 with a message
naming the field, never an exception deeper down (a 500). Pure functions."""

from __future__ import annotations

import json
import math
from typing import Any

from cloud_api.store import Refused

MAX_INT = 2**31 - 1  # the Integer columns' range on PostgreSQL


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Refused(400, "body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise Refused(400, f"malformed JSON: {exc.msg} at {exc.pos}") from exc
    except RecursionError as exc:
        raise Refused(400, "JSON nested too deeply") from exc
    if not isinstance(doc, dict):
        raise Refused(400, "body must be a JSON object")
    return doc


def integer(doc: dict[str, Any], key: str, default: int, lo: int = 0, hi: int = MAX_INT) -> int:
    v = doc.get(key, default)
    if type(v) is not int or not lo <= v <= hi:
        raise Refused(400, f"{key} must be an integer from {lo} to {hi}")
    return v


def text(doc: dict[str, Any], key: str, max_len: int, *, required: bool = False) -> str:
    v = doc.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or (required and not v) or len(v) > max_len:
        raise Refused(
            400, f"{key} must be a {'non-empty ' if required else ''}string of at most {max_len}"
        )
    return v


def number(doc: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    v = doc.get(key, default)
    if type(v) not in (int, float) or not math.isfinite(v) or not lo <= v <= hi:
        raise Refused(400, f"{key} must be a number from {lo:g} to {hi:g}")
    return float(v)


def query_int(raw: str | None, key: str, default: int, lo: int, hi: int) -> int:
    if raw is None:
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 12:
        raise Refused(400, f"{key} must be an integer from {lo} to {hi}")
    return max(lo, min(hi, int(raw)))


def query_float(raw: str | None, key: str) -> float | None:
    if raw is None:
        return None
    try:
        v = float(raw)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise Refused(400, f"{key} must be a finite number (unix seconds)")
    return v
