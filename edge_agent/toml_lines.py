"""Where each key of a TOML document is written, so errors can name a line.

tomllib gives values but not positions. This scanner walks the text once, tracking table
headers (including arrays of tables) and `key =` lines, and records the line of every path.
Values inside inline tables and multi-line arrays are attributed to the line of their key,
which is where a person would look.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Path = tuple[str | int, ...]

_BARE = r"[A-Za-z0-9_-]+"
_KEY = rf'(?:{_BARE}|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER_AOT = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_HEADER = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY)


def _split(dotted: str) -> list[str]:
    parts = []
    for m in _PART.finditer(dotted):
        tok = m.group(0)
        if tok[0] in "\"'":
            tok = tok[1:-1]
        parts.append(tok)
    return parts


class LineMap:
    def __init__(self, text: str) -> None:
        self._lines: dict[Path, int] = {}
        self._scan(text)

    def _resolve(self, parts: Sequence[str]) -> Path:
        """Turn header names into a concrete path, picking the last element of arrays of tables."""
        path: list[str | int] = []
        for part in parts:
            path.append(part)
            count = self._aot.get(tuple(path))
            if count is not None:
                path.append(count - 1)
        return tuple(path)

    def _scan(self, text: str) -> None:
        self._aot: dict[Path, int] = {}
        table: Path = ()
        in_multiline: str | None = None
        depth = 0  # open brackets of a multi-line array or inline table
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw
            if in_multiline is not None:
                if in_multiline in line:
                    line = line.split(in_multiline, 1)[1]
                    in_multiline = None
                else:
                    continue
            if depth > 0:
                depth += _bracket_delta(line)
                continue
            if m := _HEADER_AOT.match(line):
                parts = _split(m.group(1))
                parent = self._resolve(parts[:-1])
                key = (*parent, parts[-1])
                self._aot[key] = self._aot.get(key, 0) + 1
                table = (*key, self._aot[key] - 1)
                self._lines.setdefault(key, lineno)
                self._lines[table] = lineno
                continue
            if m := _HEADER.match(line):
                table = self._resolve(_split(m.group(1)))
                self._lines.setdefault(table, lineno)
                continue
            if m := _ASSIGN.match(line):
                path = (*table, *_split(m.group(1)))
                self._lines.setdefault(path, lineno)
                rest = line[m.end() :]
                for quote in ('"""', "'''"):
                    if rest.count(quote) == 1:
                        in_multiline = quote
                depth = max(0, _bracket_delta(rest))

    def line(self, path: Path) -> int | None:
        """The line of the path, or of its nearest written ancestor."""
        p = tuple(path)
        while p:
            if p in self._lines:
                return self._lines[p]
            p = p[:-1]
        return None


def _bracket_delta(s: str) -> int:
    # Strings may contain brackets; strip simple quoted strings and comments first.
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', "", s)
    s = s.split("#", 1)[0]
    return s.count("[") + s.count("{") - s.count("]") - s.count("}")


def format_path(path: Path) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else p
    return out
