"""Staff PINs: the hash format, verification, the lock-out after wrong PINs (ManualClock), the
events it records (never the PIN), the venue config's [[staff]] errors with file:line: field,
and `beerflow-edge staff hash-pin`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beerflow_edge import cli
from edge_agent.clock import ManualClock
from edge_agent.config.loader import load_config
from edge_agent.errors import ValidationError
from edge_agent.messages import Event, Severity
from edge_agent.staff import (
    LockedOut,
    PinHash,
    PinHashError,
    Staff,
    StaffDirectory,
    WrongPin,
    hash_pin,
    parse_pin_hash,
    verify_pin,
)
from tests.conftest import MINIMAL_VENUE

FAST = {"n": 2**4, "r": 1, "p": 1}  # parser and directory logic, not the KDF's cost


def test_hash_format_and_verify():
    line = hash_pin("2468")
    scheme, n, r, p, salt, key = line.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(key)) == 32
    h = parse_pin_hash(line)
    assert verify_pin("2468", h) and not verify_pin("2469", h) and not verify_pin("", h)
    assert h.format() == line
    # a random salt: the same PIN never gives the same line twice
    assert hash_pin("2468", **FAST) != hash_pin("2468", **FAST)
    assert "2468" not in line


@pytest.mark.parametrize("pin", ["123", "12a4", "", "1234567890123", "١٢٣٤"])
def test_pins_are_4_to_12_ascii_digits(pin):
    with pytest.raises(ValueError, match="4 to 12 digits"):
        hash_pin(pin, **FAST)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1234", "must look like"),
        ("bcrypt$16$8$1$AAAAAAAAAAA=$" + "A" * 44, "must look like"),
        ("scrypt$16384$8$1$salt", "must look like"),
        ("scrypt$1000$8$1$AAAAAAAAAAA=$" + "A" * 44, "power of two"),
        ("scrypt$-2$8$1$AAAAAAAAAAA=$" + "A" * 44, "whole number"),
        ("scrypt$16384$0$1$AAAAAAAAAAA=$" + "A" * 44, "between 1 and 32"),
        ("scrypt$16384$8$1$not base64!$" + "A" * 44, "salt is not base64"),
        ("scrypt$16384$8$1$AAAA$" + "A" * 44, "salt must be 8 to 64 bytes"),
        ("scrypt$16384$8$1$AAAAAAAAAAA=$AAAA", "hash must be 16 to 64 bytes"),
        ("scrypt$1048576$32$1$AAAAAAAAAAA=$" + "A" * 44, "more than 1 GiB"),
    ],
)
def test_malformed_hashes_are_refused_with_the_reason(text, why):
    with pytest.raises(PinHashError, match=why):
        parse_pin_hash(text)


@given(st.text(max_size=120))
def test_parser_total_on_any_text(text):
    try:
        h = parse_pin_hash(text)
    except PinHashError:
        return
    assert h.format().split("$")[:4] == text.split("$")[:4]


@given(
    st.integers(1, 20),
    st.integers(1, 32),
    st.integers(1, 16),
    st.binary(min_size=8, max_size=64),
    st.binary(min_size=16, max_size=64),
)
def test_parser_round_trips_every_valid_hash(log_n, r, p, salt, key):
    h = PinHash(2**log_n, r, p, salt, key)
    if 128 * r * h.n > 2**30:
        with pytest.raises(PinHashError):
            parse_pin_hash(h.format())
    else:
        assert parse_pin_hash(h.format()) == h


@given(st.lists(st.sampled_from(["scrypt", "16", "1", "$", "AAAAAAAAAAA=", "=", "A" * 24, "x"])))
def test_parser_total_on_near_misses(parts):
    with contextlib.suppress(PinHashError):
        parse_pin_hash("".join(parts))


class Member:
    def __init__(self, id: str, name: str, pin: str, role: str = "staff") -> None:
        self.id, self.name, self.role = id, name, role
        self.pin_hash = hash_pin(pin, **FAST)


async def test_five_wrong_pins_lock_that_member_for_a_minute():
    clock = ManualClock(start=1_750_000_000.0)
    events: list[Event] = []

    async def record(e: Event) -> None:
        events.append(e)

    d = StaffDirectory(
        [Member("12", "Sam Okafor", "2468"), Member("jo", "Jo Bianchi", "1357")], clock, record
    )
    assert (await d.authenticate("12", "2468")).name == "Sam Okafor"
    for left in (4, 3, 2, 1):
        with pytest.raises(WrongPin, match=f"^wrong staff ID or PIN \\({left} tries left"):
            await d.authenticate("12", "9753")
    with pytest.raises(LockedOut, match="locked for 60 s"):
        await d.authenticate("12", "9753")
    # locked: even the right PIN is refused, and says how long to wait
    await clock.advance(20)
    with pytest.raises(LockedOut, match="try again in 40 s") as exc:
        await d.authenticate("12", "2468")
    assert exc.value.retry_after_s == pytest.approx(40)
    # the lock is per member: Jo is not affected
    assert (await d.authenticate("jo", "1357")).id == "jo"
    await clock.advance(41)
    assert (await d.authenticate("12", "2468")).id == "12"
    with pytest.raises(WrongPin, match=r"^wrong staff ID or PIN \(4 tries left"):
        await d.authenticate("nobody", "2468")  # exactly like a member's wrong PIN

    assert [e.kind for e in events] == ["staff.pin_failed"] * 6
    assert [e.data.get("tries_left") for e in events[:4]] == [4, 3, 2, 1]
    assert events[4].data["locked_s"] == 60 and events[4].severity is Severity.WARNING
    assert events[5].data == {"staff_id": "nobody", "reason": "unknown staff ID", "tries_left": 4}
    assert all(e.ts >= 1_750_000_000.0 for e in events)
    for e in events:  # no PIN, tried or right, in anything recorded
        assert "9753" not in repr(e) and "2468" not in repr(e)


async def test_a_success_resets_the_count():
    clock = ManualClock(start=0.0)

    async def record(_: Event) -> None:
        pass

    d = StaffDirectory([Member("12", "Sam", "2468")], clock, record, max_failures=3)
    for _ in range(2):
        with pytest.raises(WrongPin):
            await d.authenticate("12", "1111")
    await d.authenticate("12", "2468")
    for _ in range(2):
        with pytest.raises(WrongPin):
            await d.authenticate("12", "1111")
    with pytest.raises(LockedOut):
        await d.authenticate("12", "1111")


def staff_block(id_: str, pin_hash: str, role: str = "staff") -> str:
    return (
        f'\n[[staff]]\nid = "{id_}"\nname = "Someone {id_}"\nrole = "{role}"\n'
        f'pin_hash = "{pin_hash}"\n'
    )


def test_config_staff_loads(write_config):
    good = hash_pin("2468", **FAST)
    cfg = load_config(write_config(MINIMAL_VENUE + staff_block("12", good, "manager")))
    (m,) = cfg.staff
    assert (m.id, m.name, m.role, m.pin_hash) == ("12", "Someone 12", "manager", good)
    assert good not in repr(m)  # the hash stays out of logs and tracebacks


def test_config_staff_errors_have_file_line_and_field(write_config):
    good = hash_pin("2468", **FAST)
    text = (
        MINIMAL_VENUE
        + staff_block("12", good)
        + staff_block("12", good)
        + staff_block("13", "2468")
    )
    path = write_config(text)
    with pytest.raises(ValidationError) as exc:
        load_config(path)
    msgs = [str(i) for i in exc.value.issues]
    lines = text.splitlines()

    def line_of(needle: str, nth: int = 0) -> int:
        hits = [i + 1 for i, line in enumerate(lines) if needle in line]
        return hits[nth]

    dup_line, bad_line = line_of('id = "12"', 1), line_of('pin_hash = "2468"')
    want_dup = f"{path}:{dup_line}: staff[1].id: duplicate staff id '12'"
    want_bad = f"{path}:{bad_line}: staff[2].pin_hash: pin_hash must"
    assert any(m.startswith(want_dup) for m in msgs), msgs
    assert any(m.startswith(want_bad) for m in msgs), msgs
    bad_role = write_config(MINIMAL_VENUE + staff_block("14", good, "chef"), "role.toml")
    with pytest.raises(ValidationError, match=r"staff\[0\]\.role: must be one of"):
        load_config(bad_role)
    assert not any("2468" in m.split(":", 3)[-1] and "pin_hash must" not in m for m in msgs)


def test_cli_hash_pin_reads_without_echo(monkeypatch, capsys):
    answers = iter(["2468", "2468"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert cli.main(["staff", "hash-pin"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith('pin_hash = "scrypt$16384$8$1$') and "2468" not in out
    assert verify_pin("2468", parse_pin_hash(out.split('"')[1]))
    assert len(prompts) == 2

    answers = iter(["2468", "2469"])
    assert cli.main(["staff", "hash-pin"]) == 2
    assert "differ" in capsys.readouterr().err
    answers = iter(["12", "12"])
    assert cli.main(["staff", "hash-pin"]) == 2
    assert "4 to 12 digits" in capsys.readouterr().err


async def test_concurrent_guesses_check_at_most_five_pins_and_never_accept_after():
    """60 different PINs at once (the right one among them, last): the tries are counted
    before the PINs are verified, so at most five are checked and the right one, arriving
    after them, is refused by the lock-out."""
    clock = ManualClock(start=0.0)

    async def record(_: Event) -> None:
        pass

    d = StaffDirectory([Member("12", "Sam", "2468")], clock, record)
    pins = [f"{1000 + i}" for i in range(59)] + ["2468"]
    results = await asyncio.gather(*(d.authenticate("12", p) for p in pins), return_exceptions=True)
    assert not any(isinstance(r, Staff) for r in results)
    assert sum(isinstance(r, WrongPin) for r in results) <= 4
    assert sum(isinstance(r, LockedOut) for r in results) >= 55


async def test_the_lock_out_survives_a_restart(tmp_path):
    clock = ManualClock(start=1_750_000_000.0)
    state = str(tmp_path / "staff-lockout.json")

    async def record(_: Event) -> None:
        pass

    members = [Member("12", "Sam", "2468")]
    d = StaffDirectory(members, clock, record, state_path=state)
    for _ in range(4):
        with pytest.raises(WrongPin):
            await d.authenticate("12", "1111")
    assert os.stat(state).st_mode & 0o777 == 0o600
    d = StaffDirectory(members, clock, record, state_path=state)  # the agent restarted
    with pytest.raises(LockedOut):
        await d.authenticate("12", "1111")  # the fifth, not the first of five new ones
    d = StaffDirectory(members, clock, record, state_path=state)
    with pytest.raises(LockedOut):
        await d.authenticate("12", "2468")  # still locked after another restart
    await clock.advance(61)
    assert (await d.authenticate("12", "2468")).id == "12"
