"""The rules.toml examples in docs/haccp.md load as written (a manager copies them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules.model import load_rules_text

DOC = Path(__file__).parent.parent / "docs" / "haccp.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("text", BLOCKS, ids=[b.splitlines()[0] for b in BLOCKS])
def test_every_toml_example_loads(text: str) -> None:
    rf = load_rules_text(text, "docs/haccp.md")
    if "[notify]" in text:
        assert [r.id for r in rf.notify.recipients] == ["chef", "manager"]
        assert rf.step_recipients(0) == ("chef",) and rf.step_recipients(2) == ("chef", "manager")
    if "[[haccp.checks]]" in text:
        (check,) = rf.haccp.checks
        assert [i.kind for i in check.items] == ["pass_fail", "value"]
