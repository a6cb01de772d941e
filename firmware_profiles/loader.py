"""Load and validate profiles: every error names the file, the line and the field."""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import Issue, ValidationError
from edge_agent.typed_toml import INVALID, Decoder, parse_toml, read_text
from firmware_profiles.schema import Profile

BUILTIN_DIR = Path(__file__).parent / "library"


def load_profile(file: str) -> Profile:
    text = read_text(file)
    data, lines = parse_toml(text, file)
    dec = Decoder(file, lines)
    profile = dec.decode_dataclass(Profile, data, ())
    if profile is not INVALID:
        _cross_check(profile, dec)
    if dec.issues:
        raise ValidationError(dec.issues)
    stem = Path(file).stem
    if profile.id != stem:
        raise ValidationError(
            [Issue(file, lines.line(("id",)), "id", f"must match the file name ({stem!r})")]
        )
    return profile


def _cross_check(profile: Profile, dec: Decoder) -> None:
    """Checks that span several fields, done by the transport's own section module."""
    module = importlib.import_module(f"firmware_profiles.sections.{profile.transport}")
    module.check_section(profile.section, dec, (profile.transport,))


@dataclass
class ProfileLibrary:
    profiles: dict[str, Profile]
    sources: dict[str, str]

    def get(self, profile_id: str) -> Profile | None:
        return self.profiles.get(profile_id)

    def suggest(self, profile_id: str) -> str:
        close = difflib.get_close_matches(profile_id, list(self.profiles), n=2)
        return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""

    def __iter__(self) -> Iterator[Profile]:
        return iter(self.profiles[k] for k in sorted(self.profiles))


def profile_files(dirs: Iterable[str | Path]) -> list[str]:
    files: list[str] = []
    for d in dirs:
        if os.path.isdir(d):
            files += sorted(str(Path(d) / f) for f in os.listdir(d) if f.endswith(".toml"))
    return files


def load_library(extra_dirs: Iterable[str | Path] = ()) -> ProfileLibrary:
    """Built-in profiles plus any extra directories; a later directory overrides an id."""
    issues: list[Issue] = []
    profiles: dict[str, Profile] = {}
    sources: dict[str, str] = {}
    for d in extra_dirs:
        if not os.path.isdir(d):
            issues.append(Issue(str(d), None, "", "profile directory does not exist"))
    for file in profile_files([BUILTIN_DIR, *extra_dirs]):
        try:
            p = load_profile(file)
        except ValidationError as exc:
            issues.extend(exc.issues)
            continue
        profiles[p.id] = p
        sources[p.id] = file
    if issues:
        raise ValidationError(issues)
    return ProfileLibrary(profiles, sources)
