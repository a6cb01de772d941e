"""Decode parsed TOML into frozen dataclasses, collecting every error with file, line and field.

Dataclass fields declare the shape: str, int, float, bool, Literal[...], tuple[T, ...],
dict[str, T], nested dataclasses, `T | None`, and tagged unions `A | B | ...` of dataclasses
each with a `type: Literal["a"]` field (the table's `type` picks the dataclass). Field
metadata adds constraints: `min`, `max` (numbers), `pattern` (strings), `nonempty` (strings
and tuples).
Unknown keys are errors (with a suggestion), never silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from edge_agent.errors import Issue, ValidationError
from edge_agent.toml_lines import LineMap, Path, format_path

T = TypeVar("T")


class _Invalid:
    """Marker for a value that failed to decode (the issue is already recorded)."""


INVALID: Any = _Invalid()


class Decoder:
    def __init__(self, file: str, lines: LineMap | None) -> None:
        self.file = file
        self.lines = lines
        self.issues: list[Issue] = []

    def error(self, path: Path, message: str) -> None:
        line = self.lines.line(path) if self.lines is not None else None
        self.issues.append(Issue(self.file, line, format_path(path), message))

    def decode(self, tp: Any, raw: Any, path: Path, meta: typing.Mapping[str, Any]) -> Any:
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            options = [a for a in get_args(tp) if a is not type(None)]
            if raw is None and len(options) < len(get_args(tp)):
                return None
            if len(options) == 1:
                return self.decode(options[0], raw, path, meta)
            return self._tagged(_tags(tuple(options)), raw, path)
        if origin is Literal:
            choices = get_args(tp)
            if raw not in choices or type(raw) is not type(choices[0]):
                shown = ", ".join(repr(c) for c in choices)
                self.error(path, f"must be one of {shown} (got {raw!r})")
                return INVALID
            return raw
        if origin is tuple:
            args = get_args(tp)
            if not isinstance(raw, list):
                self.error(path, f"must be a list (got {_kind(raw)})")
                return INVALID
            if meta.get("nonempty") and not raw:
                self.error(path, "must not be empty")
                return INVALID
            items = [self.decode(args[0], v, (*path, i), {}) for i, v in enumerate(raw)]
            return INVALID if any(i is INVALID for i in items) else tuple(items)
        if origin is dict:
            _, vt = get_args(tp)
            if not isinstance(raw, dict):
                self.error(path, f"must be a table (got {_kind(raw)})")
                return INVALID
            out = {k: self.decode(vt, v, (*path, k), {}) for k, v in raw.items()}
            return INVALID if any(v is INVALID for v in out.values()) else out
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.decode_dataclass(tp, raw, path)
        return self._scalar(tp, raw, path, meta)

    def _tagged(self, tags: dict[str, type[Any]], raw: Any, path: Path) -> Any:
        if not isinstance(raw, dict):
            self.error(path, f"must be a table (got {_kind(raw)})")
            return INVALID
        shown = ", ".join(repr(t) for t in tags)
        if "type" not in raw:
            self.error(path, f"missing required key 'type' (one of {shown})")
            return INVALID
        cls = tags.get(raw["type"]) if isinstance(raw["type"], str) else None
        if cls is None:
            self.error((*path, "type"), f"must be one of {shown} (got {raw['type']!r})")
            return INVALID
        return self.decode_dataclass(cls, raw, path)

    def _scalar(self, tp: Any, raw: Any, path: Path, meta: typing.Mapping[str, Any]) -> Any:
        if tp is bool:
            if not isinstance(raw, bool):
                self.error(path, f"must be true or false (got {_kind(raw)})")
                return INVALID
            return raw
        if tp is int:
            if isinstance(raw, bool) or not isinstance(raw, int):
                self.error(path, f"must be an integer (got {_kind(raw)})")
                return INVALID
            if not -(2**63) <= raw < 2**63:
                self.error(path, "is out of range (a 64-bit integer at most)")
                return INVALID
            return self._range(raw, path, meta)
        if tp is float:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                self.error(path, f"must be a number (got {_kind(raw)})")
                return INVALID
            try:
                value = float(raw)
            except OverflowError:
                value = float("inf")
            if value != value or value in (float("inf"), float("-inf")):
                self.error(path, "must be a finite number")
                return INVALID
            return self._range(value, path, meta)
        if tp is str:
            if not isinstance(raw, str):
                self.error(path, f"must be a string (got {_kind(raw)})")
                return INVALID
            if meta.get("nonempty") and not raw.strip():
                self.error(path, "must not be empty")
                return INVALID
            pattern = meta.get("pattern")
            if pattern is not None and not re.fullmatch(pattern, raw):
                hint = meta.get("pattern_hint", f"pattern {pattern}")
                self.error(path, f"{raw!r} is not valid: expected {hint}")
                return INVALID
            return raw
        raise TypeError(f"unsupported type in schema: {tp!r}")  # pragma: no cover

    def _range(self, value: Any, path: Path, meta: typing.Mapping[str, Any]) -> Any:
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and value < lo:
            self.error(path, f"must be at least {lo} (got {value})")
            return INVALID
        if hi is not None and value > hi:
            self.error(path, f"must be at most {hi} (got {value})")
            return INVALID
        return value

    def decode_dataclass(self, cls: type[T], raw: Any, path: Path) -> T:
        if not isinstance(raw, dict):
            self.error(path, f"must be a table (got {_kind(raw)})")
            return typing.cast(T, INVALID)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
        hints = typing.get_type_hints(cls)
        ok = True
        for key in raw:
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.error((*path, key), f"unknown key{hint}")
                ok = False
        kwargs: dict[str, Any] = {}
        for name, f in fields.items():
            if name in raw:
                value = self.decode(hints[name], raw[name], (*path, name), f.metadata)
                if value is INVALID:
                    ok = False
                else:
                    kwargs[name] = value
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.error(path, f"missing required key {name!r}")
                ok = False
        if not ok:
            return typing.cast(T, INVALID)
        try:
            return cls(**kwargs)
        except ValueError as exc:
            self.error(path, str(exc))
            return typing.cast(T, INVALID)


def _tags(options: tuple[Any, ...]) -> dict[str, type[Any]]:
    """Each dataclass of a tagged union by the one value of its `type: Literal[...]` field."""
    tags: dict[str, type[Any]] = {}
    for cls in options:
        if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
            raise TypeError(f"unsupported union member in schema: {cls!r}")  # pragma: no cover
        tag = typing.get_type_hints(cls).get("type")
        if get_origin(tag) is not Literal or len(get_args(tag)) != 1:
            # pragma: no cover - a schema bug, not bad input
            raise TypeError(f"{cls.__name__} needs a type: Literal['...'] field")
        tags[get_args(tag)[0]] = cls
    return tags


def _kind(raw: Any) -> str:
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int):
        return "an integer"
    if isinstance(raw, float):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    if isinstance(raw, list):
        return "a list"
    if isinstance(raw, dict):
        return "a table"
    return type(raw).__name__


_TOML_POS = re.compile(r"\(at line (\d+), column \d+\)")


def parse_toml(text: str, file: str) -> tuple[dict[str, Any], LineMap]:
    """Parse TOML; a syntax error becomes a ValidationError naming the line."""
    try:
        data = tomllib.loads(text)
    except RecursionError as exc:
        line, key = _worst_line(text, lambda ln: ln.count("[") + ln.count("{"))
        raise ValidationError(
            [Issue(file, line, key, "arrays or inline tables nested too deeply")]
        ) from exc
    except ValueError as exc:
        if not isinstance(exc, tomllib.TOMLDecodeError):  # e.g. an integer of 5,000 digits
            line, key = _worst_line(
                text, lambda ln: max(map(len, re.findall(r"\d+", ln)), default=0)
            )
            raise ValidationError([Issue(file, line, key, "number too large")]) from exc
        msg = str(exc)
        m = _TOML_POS.search(msg)
        line = int(m.group(1)) if m else None
        raise ValidationError(
            [Issue(file, line, "", f"TOML syntax error: {_TOML_POS.sub('', msg).strip()}")]
        ) from exc
    return data, LineMap(text)


def _worst_line(text: str, score: typing.Callable[[str], int]) -> tuple[int | None, str]:
    """The line (1-based) scoring highest, and the key assigned on it, to point at."""
    best, best_score = None, 0
    lines = text.splitlines()
    for i, ln in enumerate(lines, start=1):
        sc = score(ln)
        if sc > best_score:
            best, best_score = i, sc
    if best is None:
        return None, ""
    key = lines[best - 1].split("=", 1)[0].strip() if "=" in lines[best - 1] else ""
    return best, key[:64]


def read_text(file: str) -> str:
    try:
        with open(file, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise ValidationError([Issue(file, None, "", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ValidationError([Issue(file, None, "", "not UTF-8 text")]) from exc
