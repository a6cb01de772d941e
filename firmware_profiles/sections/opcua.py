"""The OPC-UA section of a profile: browse paths to variables mapped to points, typed writes and
method calls.

Browse paths are written relative to the device object as `alias:Name/alias:Name`, where each
alias names a namespace URI in `namespaces`. Namespace *indexes* differ from server to server;
URIs do not, so a profile never contains a numeric index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from edge_agent.toml_lines import Path
from edge_agent.typed_toml import Decoder
from firmware_profiles.checks import unique_names
from firmware_profiles.common import IDENT, IDENT_HINT, PointKind

# One browse-path step: a namespace alias, a colon, and a browse name without '/' or ':'.
STEP = r"[a-z][a-z0-9_]*:[^/:\s]+"
BROWSE_PATH = rf"{STEP}(/{STEP})*"
BROWSE_PATH_HINT = "steps like 'alias:Name/alias:Name' (aliases from [opcua.namespaces])"

ArgType = Literal["bool", "int16", "uint16", "int32", "uint32", "float", "double", "string"]
NUMERIC_ARGS = frozenset({"int16", "uint16", "int32", "uint32", "float", "double"})


def path_steps(path: str) -> list[tuple[str, str]]:
    """'cke:CombiSteamer/cke:SetTemperature' -> [('cke', 'CombiSteamer'), ('cke', ...)]."""
    steps = []
    for step in path.split("/"):
        alias, _, name = step.partition(":")
        steps.append((alias, name))
    return steps


@dataclass(frozen=True, slots=True)
class OpcuaPoint:
    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    kind: PointKind
    path: str = field(metadata={"pattern": BROWSE_PATH, "pattern_hint": BROWSE_PATH_HINT})
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    # Integer value (as a string key, TOML keys are strings) -> the name published instead.
    enum: dict[str, str] = field(default_factory=dict)
    writable: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        for key in self.enum:
            if not re.fullmatch(r"-?[0-9]+", key):
                raise ValueError(f"enum keys must be integers (got {key!r})")
        if self.enum and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError("an enum point cannot have a scale or offset")

    @property
    def where(self) -> str:
        scale = f" x{self.scale:g}" if self.scale != 1 else ""
        return f"{self.path}{scale}{' rw' if self.writable else ''}"


@dataclass(frozen=True, slots=True)
class OpcuaArg:
    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    type: ArgType
    min: float | None = None
    max: float | None = None
    max_length: int = field(default=64, metadata={"min": 1, "max": 4096})
    # A string argument: the only values accepted (empty: any text up to max_length).
    choices: tuple[str, ...] = ()
    # An integer argument: integer value (as a string key) -> the name a person may give.
    enum: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True, slots=True)
class OpcuaCommand:
    """Either a range-checked write of a writable point (`point`), or a method call (`method`
    on `object`, both browse paths relative to the device) with typed, range-checked args."""

    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    point: str | None = None
    min: float | None = None
    max: float | None = None
    readback: bool = True
    object: str | None = field(
        default=None, metadata={"pattern": BROWSE_PATH, "pattern_hint": BROWSE_PATH_HINT}
    )
    method: str | None = field(
        default=None, metadata={"pattern": STEP, "pattern_hint": "one step like 'alias:Name'"}
    )
    args: tuple[OpcuaArg, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if (self.point is None) == (self.method is None):
            raise ValueError("a command needs exactly one of 'point' (a write) or 'method'")
        if self.method is not None and (self.min is not None or self.max is not None):
            raise ValueError("a method command range-checks each of its args, not 'min'/'max'")
        if self.point is not None and (self.args or self.object is not None):
            raise ValueError("a write command has no 'args' or 'object'")

    @property
    def is_call(self) -> bool:
        return self.method is not None


@dataclass(frozen=True, slots=True)
class OpcuaSection:
    # alias -> namespace URI
    namespaces: dict[str, str] = field(metadata={"nonempty": True})
    points: tuple[OpcuaPoint, ...] = field(metadata={"nonempty": True})
    commands: tuple[OpcuaCommand, ...] = ()
    # Where the device objects live, as a browse path from the Objects folder.
    root: str = field(
        default="di:DeviceSet",
        metadata={"pattern": BROWSE_PATH, "pattern_hint": BROWSE_PATH_HINT},
    )
    # The browse name of the object type that identifies the device (discovery uses it).
    type_name: str = ""
    # A child every such device has; picks the device object when several live under `root`.
    match: str | None = field(
        default=None, metadata={"pattern": BROWSE_PATH, "pattern_hint": BROWSE_PATH_HINT}
    )
    publishing_interval_ms: int = field(default=1000, metadata={"min": 10, "max": 600_000})
    # Used when the server refuses subscriptions.
    polling_interval_s: float = field(default=5.0, metadata={"min": 0.1, "max": 3600})
    # With subscriptions, every value is also read this often: steady records for HACCP even
    # when nothing changes, and a liveness check.
    refresh_interval_s: float = field(default=60.0, metadata={"min": 1, "max": 86400})
    timeout_s: float = field(default=5.0, metadata={"min": 0.1, "max": 60})


def _check_aliases(section: OpcuaSection, value: str, dec: Decoder, path: Path) -> None:
    for alias, _ in path_steps(value):
        if alias not in section.namespaces:
            known = ", ".join(sorted(section.namespaces))
            dec.error(path, f"unknown namespace alias {alias!r} (known: {known})")
            return


def check_section(section: OpcuaSection, dec: Decoder, path: Path) -> None:
    """Cross-field checks: aliases defined, unique names, commands on writable points."""
    unique_names(section.points, dec, (*path, "points"))
    for alias in section.namespaces:
        if not re.fullmatch(IDENT, alias):
            dec.error((*path, "namespaces", alias), f"alias must be {IDENT_HINT}")
    _check_aliases(section, section.root, dec, (*path, "root"))
    if section.match is not None:
        _check_aliases(section, section.match, dec, (*path, "match"))
    for i, p in enumerate(section.points):
        _check_aliases(section, p.path, dec, (*path, "points", i, "path"))
    by_name = {p.name: p for p in section.points}
    commands: set[str] = set()
    for i, c in enumerate(section.commands):
        where = (*path, "commands", i)
        if c.name in commands:
            dec.error((*where, "name"), f"duplicate command name {c.name!r}")
        commands.add(c.name)
        if c.point is not None:
            target = by_name.get(c.point)
            if target is None:
                dec.error((*where, "point"), f"no point named {c.point!r}")
            elif not target.writable:
                dec.error((*where, "point"), f"point {c.point!r} is not writable")
        if c.min is not None and c.max is not None and c.min > c.max:
            dec.error((*where, "min"), "min is greater than max")
        if c.object is not None:
            _check_aliases(section, c.object, dec, (*where, "object"))
        if c.method is not None:
            _check_aliases(section, c.method, dec, (*where, "method"))
        arg_names: set[str] = set()
        for j, a in enumerate(c.args):
            if a.name in arg_names:
                dec.error((*where, "args", j, "name"), f"duplicate argument {a.name!r}")
            arg_names.add(a.name)
            if a.type not in NUMERIC_ARGS and (a.min is not None or a.max is not None):
                dec.error((*where, "args", j, "min"), f"a {a.type} argument has no range")
            if a.min is not None and a.max is not None and a.min > a.max:
                dec.error((*where, "args", j, "min"), "min is greater than max")
            if a.choices and a.type != "string":
                dec.error((*where, "args", j, "choices"), "only a string argument has choices")
            for choice in a.choices:
                if not choice or len(choice) > a.max_length:
                    dec.error(
                        (*where, "args", j, "choices"), f"choice {choice!r} is empty or too long"
                    )
            if a.enum and (a.type not in NUMERIC_ARGS or a.type in ("float", "double")):
                dec.error((*where, "args", j, "enum"), "only an integer argument has an enum")
            for key, label in a.enum.items():
                if not re.fullmatch(r"-?[0-9]+", key) or not re.fullmatch(IDENT, label):
                    dec.error(
                        (*where, "args", j, "enum"),
                        f"enum entries map an integer to a name ({key!r} = {label!r})",
                    )
