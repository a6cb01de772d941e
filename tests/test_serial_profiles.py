"""Serial profiles and serial devices in the venue config: errors name the file, line and field."""

from __future__ import annotations

import pytest

from edge_agent.config.loader import load_config
from edge_agent.errors import ValidationError
from firmware_profiles.loader import load_library, load_profile
from tests.conftest import MINIMAL_VENUE

SCALE = """\
id = "{id}"
vendor = "Acme"
model = "Weigh 1"
transport = "serial"

[serial]
[[serial.points]]
name = "weight"
kind = "weight"
source = "weight"
unit = "g"
"""


def write(tmp_path, text: str, name: str = "acme-weigh.toml") -> str:
    p = tmp_path / name
    p.write_text(text.replace("{id}", p.stem))
    return str(p)


def issues(tmp_path, text) -> str:
    with pytest.raises(ValidationError) as info:
        load_profile(write(tmp_path, text))
    return " | ".join(str(i) for i in info.value.issues)


def test_builtin_scale_profiles_load():
    lib = load_library()
    bench, keg = lib.get("mettler-toledo-mtsics"), lib.get("keg-scale-mtsics")
    assert bench is not None and keg is not None
    assert bench.serial is not None and bench.serial.request == "SI"
    assert [c.action for c in bench.serial.commands] == ["tare", "zero"]
    assert keg.serial is not None and keg.serial.keg is not None
    assert {p.name: p.where for p in keg.serial.points}["litres_remaining"] == "litres_remaining"


def test_minimal_profile_defaults(tmp_path):
    p = load_profile(write(tmp_path, SCALE))
    assert p.serial is not None
    assert (p.serial.protocol, p.serial.timeout_s, p.serial.keg) == ("mt-sics", 1.0, None)


def test_litres_point_needs_keg_parameters(tmp_path):
    text = SCALE + '\n[[serial.points]]\nname = "left"\nkind = "volume"\n'
    text += 'source = "litres_remaining"\nunit = "L"\n'
    assert ":16: serial.points[1].source: a litres_remaining point needs a [serial.keg]" in (
        issues(tmp_path, text)
    )


def test_point_shape_errors(tmp_path):
    assert "serial.points[0]: a weight point needs a mass unit" in issues(
        tmp_path, SCALE.replace('unit = "g"', 'unit = "L"')
    )
    assert "a weight point must have kind 'weight'" in issues(
        tmp_path, SCALE.replace('kind = "weight"', 'kind = "temperature"')
    )
    assert "must be one of 'mt-sics'" in issues(
        tmp_path, SCALE.replace("[serial]", '[serial]\nprotocol = "enq"')
    )


def test_cross_field_checks(tmp_path):
    text = SCALE.replace("[serial]", "[serial]\ntimeout_s = 2.0\ncommand_timeout_s = 1.0")
    text += '\n[[serial.commands]]\nname = "tare"\naction = "tare"\n'
    text += '\n[[serial.commands]]\nname = "tare"\naction = "zero"\n'
    got = issues(tmp_path, text)
    assert "serial.command_timeout_s: must not be shorter than timeout_s" in got
    assert "serial.commands[1].name: duplicate command name 'tare'" in got
    no_weight = SCALE.replace('kind = "weight"\nsource = "weight"\nunit = "g"', 'kind = "state"')
    no_weight = no_weight.replace('kind = "state"', 'kind = "state"\nsource = "stable"')
    assert "needs a point with source 'weight'" in issues(tmp_path, no_weight)


BUS = '\n[[buses]]\nid = "line-1"\ntype = "rs232"\nport = "/dev/ttyUSB0"\n'


def config_issues(write_config, devices: str, buses: str = BUS) -> str:
    with pytest.raises(ValidationError) as info:
        load_config(write_config(MINIMAL_VENUE + buses + devices))
    return " | ".join(str(i) for i in info.value.issues)


def dev(extra: str = 'bus = "line-1"', dev_id: str = "scale") -> str:
    return f'\n[[devices]]\nid = "{dev_id}"\nprofile = "mettler-toledo-mtsics"\n{extra}\n'


def test_a_good_serial_device_loads(write_config):
    cfg = load_config(write_config(MINIMAL_VENUE + BUS + dev()))
    assert cfg.devices[0].bus == "line-1"


def test_serial_device_addressing_errors(write_config):
    assert "a serial device needs 'bus'" in config_issues(write_config, dev(""))
    assert "undefined bus 'line-2' (buses: line-1)" in config_issues(
        write_config, dev('bus = "line-2"')
    )
    got = config_issues(write_config, dev('bus = "line-1"\nhost = "10.0.0.5"\nport = 4001'))
    assert "devices[0].host: 'host' is not used by a serial device" in got
    assert "devices[0].port: 'port' is not used by a serial device" in got
    got = config_issues(write_config, dev('bus = "line-1"\nbroker = "b"\naddress = "x"'))
    assert "'broker' is not used" in got and "'address' is not used" in got


def test_one_scale_per_line_and_poll_floor(write_config):
    got = config_issues(write_config, dev() + dev(dev_id="scale-2"))
    assert "devices[1].bus: a scale needs its line to itself; devices[0] also uses" in got
    got = config_issues(write_config, dev('bus = "line-1"\npoll_interval_s = 0.1'))
    assert "devices[0].poll_interval_s: profile 'mettler-toledo-mtsics' polls at most" in got
