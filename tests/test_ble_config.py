"""BLE device checks and profile section checks report file, line and field."""

from __future__ import annotations

import pytest

from edge_agent.config.loader import load_config
from edge_agent.errors import ValidationError
from firmware_profiles.loader import load_library, load_profile
from tests.conftest import MINIMAL_VENUE

LIBRARY = load_library()


def dev(i: int, address: str | None, profile: str = "bthome-v2", extra: str = "") -> str:
    addr = f'address = "{address}"\n' if address is not None else ""
    return f'\n[[devices]]\nid = "s{i}"\nprofile = "{profile}"\n{addr}{extra}'


def problems(write_config, text: str) -> str:
    with pytest.raises(ValidationError) as info:
        load_config(write_config(MINIMAL_VENUE + text), LIBRARY)
    return " | ".join(str(i) for i in info.value.issues)


def test_good_ble_devices_load(write_config):
    text = dev(1, "A4:C1:38:00:00:01") + dev(2, "a4:c1:38:00:00:02", "govee-h5075")
    text += dev(3, "A4:C1:38:00:00:03", extra='bindkey = "' + "ab" * 16 + '"\n')
    cfg = load_config(write_config(MINIMAL_VENUE + text), LIBRARY)
    assert [d.address for d in cfg.devices][:2] == ["A4:C1:38:00:00:01", "a4:c1:38:00:00:02"]


def test_missing_and_malformed_mac(write_config):
    got = problems(write_config, dev(1, None) + dev(2, "A4-C1-38-00-00-02"))
    assert "devices[0]: a BLE device needs 'address'" in got
    assert "devices[1].address: 'A4-C1-38-00-00-02' is not a MAC address" in got


def test_duplicate_mac_is_an_error_whatever_the_case(write_config):
    got = problems(write_config, dev(1, "A4:C1:38:00:00:01") + dev(2, "a4:c1:38:00:00:01"))
    assert "devices[1].address: devices[0] already uses this MAC address" in got


def test_bindkey_only_for_encrypted_formats_and_never_echoed(write_config):
    secret = "cd" * 16
    got = problems(
        write_config,
        dev(1, "A4:C1:38:00:00:01", "govee-h5075", f'bindkey = "{secret}"\n')
        + dev(2, "A4:C1:38:00:00:02", extra='bindkey = "123"\n'),
    )
    assert "devices[0].bindkey: profile 'govee-h5075' uses an unencrypted advert format" in got
    assert "devices[1].bindkey: a bindkey is 32 hex characters" in got
    assert secret not in got


def test_modbus_fields_on_a_ble_device_are_errors(write_config):
    got = problems(write_config, dev(1, "A4:C1:38:00:00:01", extra='host = "10.0.0.5"\n'))
    assert "devices[0].host: 'host' is not used by a BLE device" in got


PROFILE = """\
id = "{id}"
vendor = "Acme"
model = "Probe"
transport = "ble"

[ble]
decoder = "govee_h5075"

[ble.match]
manufacturer_id = 60552

[[ble.points]]
name = "temperature"
kind = "temperature"
unit = "°C"

[[ble.points]]
name = "temperature"
kind = "temperature"

[[ble.points]]
name = "weight"
kind = "weight"
"""


def test_profile_section_errors_have_lines(tmp_path):
    p = tmp_path / "acme-probe.toml"
    p.write_text(PROFILE.replace("{id}", "acme-probe"))
    with pytest.raises(ValidationError) as info:
        load_profile(str(p))
    got = " | ".join(str(i) for i in info.value.issues)
    assert ":18: ble.points[1].name: duplicate point name 'temperature'" in got
    assert ":22: ble.points[2].name: decoder 'govee_h5075' has no field 'weight'" in got


def test_match_needs_a_criterion(tmp_path):
    p = tmp_path / "acme-probe.toml"
    p.write_text(PROFILE.replace("{id}", "acme-probe").replace("manufacturer_id = 60552", ""))
    with pytest.raises(ValidationError) as info:
        load_profile(str(p))
    assert "give at least one of" in str(info.value.issues[0])


def test_every_ble_library_profile_loads():
    ids = {p.id for p in LIBRARY.profiles.values() if p.transport == "ble"}
    assert len(ids) >= 10
