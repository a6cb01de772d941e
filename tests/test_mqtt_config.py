"""MQTT addressing checks in the venue config, and the MQTT profile section's own checks."""

from __future__ import annotations

import pytest

from edge_agent.config.loader import load_config
from edge_agent.errors import ValidationError
from firmware_profiles.loader import load_profile
from tests.conftest import MINIMAL_VENUE

BROKER = '\n[[brokers]]\nid = "local"\n'


def dev(i: int, address: str | None = "plug-1", broker: str | None = "local") -> str:
    s = f'\n[[devices]]\nid = "d{i}"\nprofile = "tasmota-plug"\n'
    s += f'address = "{address}"\n' if address is not None else ""
    return s + (f'broker = "{broker}"\n' if broker is not None else "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BROKER + dev(0, broker=None), "needs 'broker'"),
        (BROKER + dev(0, broker="cellar"), "undefined broker 'cellar'"),
        (BROKER + dev(0, address=None), "needs 'address'"),
        (BROKER + dev(0, address="tele/+/x"), "wildcards"),
        (BROKER + dev(0) + dev(1), "already uses this broker and address"),
    ],
)
def test_device_checks(write_config, text, message):
    with pytest.raises(ValidationError) as exc:
        load_config(write_config(MINIMAL_VENUE + text))
    assert message in str(exc.value)


def test_valid_devices_load(write_config):
    cfg = load_config(write_config(MINIMAL_VENUE + BROKER + dev(0) + dev(1, address="plug-2")))
    assert [d.address for d in cfg.devices] == ["plug-1", "plug-2"]


PROFILE = """id = "p"
vendor = "X"
model = "Y"
transport = "mqtt"
[[mqtt.topics]]
name = "state"
topic = "{topic}"
{extra}
[[mqtt.points]]
name = "t"
kind = "temperature"
topic = "{point_topic}"
path = "t"
"""


@pytest.mark.parametrize(
    ("topic", "point_topic", "extra", "message"),
    [
        ("a/{device}", "nope", "", "no topic named 'nope'"),
        ("a/+/b", "state", "", "no MQTT wildcards"),
        ("a/x{device}", "state", "", "whole topic level"),
        ("a/b", "state", "", "needs {device}"),
        ("a/{device}", "availability", "", "no [mqtt.availability]"),
        ("a/{device}", "state", 'overlay = "ghost"', "no other topic named 'ghost'"),
        ("a/{device}", "state", 'format = "text"\nroot = "x"', "text topic has no fields"),
    ],
)
def test_profile_section_errors(tmp_path, topic, point_topic, extra, message):
    f = tmp_path / "p.toml"
    f.write_text(PROFILE.format(topic=topic, point_topic=point_topic, extra=extra))
    with pytest.raises(ValidationError) as exc:
        load_profile(str(f))
    assert message in str(exc.value) and "p.toml" in str(exc.value)
