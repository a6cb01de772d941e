"""Rule actions are a tagged union: `type` picks the dataclass, other keys must belong to it."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.errors import ValidationError
from edge_agent.typed_toml import INVALID, Decoder
from rules.actions import (
    Action,
    AlarmAction,
    ClearAlarmAction,
    CommandAction,
    NotifyAction,
    RecordAction,
)
from rules.model import load_rules_text

TAGS = {
    "alarm": AlarmAction,
    "clear_alarm": ClearAlarmAction,
    "command": CommandAction,
    "notify": NotifyAction,
    "record": RecordAction,
}


def _rule(action: str) -> str:
    return textwrap.dedent(f"""\
        [[rules]]
        id = "r"
        [rules.trigger]
        type = "threshold"
        device = "fridge"
        point = "t"
        above = 5
        [[rules.actions]]
        {action}
        """)


def test_each_type_decodes_to_its_own_dataclass():
    rf = load_rules_text(
        _rule('type = "command"\ndevice = "plug"\ncommand = "switch_on"\nargs = {level = 2}'),
        "rules.toml",
    )
    assert rf.rules[0].actions == (
        CommandAction(device="plug", command="switch_on", args={"level": 2.0}),
    )


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (
            'type = "command"\ndevice = "plug"',
            "rules[0].actions[0]: missing required key 'command'",
        ),
        ('type = "notify"\nalarm = "x"', "rules[0].actions[0].alarm: unknown key"),
        ('message = "hi"', "rules[0].actions[0]: missing required key 'type' (one of 'alarm'"),
        ('type = "dance"', "rules[0].actions[0].type: must be one of 'alarm', 'clear_alarm'"),
        ('type = "clear_alarm"\nalarm = ""', "rules[0].actions[0].alarm: must not be empty"),
    ],
)
def test_a_bad_action_is_a_located_error(action: str, error: str):
    with pytest.raises(ValidationError) as exc:
        load_rules_text(_rule(action), "rules.toml")
    msgs = [str(i) for i in exc.value.issues]
    assert any(error in m for m in msgs), msgs


KEYS = ["type", "message", "alarm", "device", "command", "args", "to", "kind"]
VALUES = st.one_of(
    st.sampled_from([*TAGS, "ui", "manager", "x", ""]),
    st.integers(-2, 2),
    st.booleans(),
    st.dictionaries(st.sampled_from(["a", "b"]), st.floats(allow_nan=False), max_size=2),
)


@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5))
def test_any_table_decodes_to_the_tagged_dataclass_or_a_located_error(raw: dict[str, Any]):
    dec = Decoder("rules.toml", None)
    got = dec.decode(Action, raw, ("actions", 0), {})
    if got is INVALID:
        assert dec.issues and all(str(i.field).startswith("actions[0]") for i in dec.issues)
    else:
        assert not dec.issues
        assert type(got) is TAGS[raw["type"]]
        assert got.type == raw["type"]
