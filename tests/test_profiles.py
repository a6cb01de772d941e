"""Profiles are data: the library validates, and a broken profile is reported with its line."""

from __future__ import annotations

import pytest

from beerflow_edge.cli import main
from edge_agent.errors import ValidationError
from firmware_profiles.loader import load_library, load_profile

GOOD = """\
id = "{id}"
vendor = "Acme"
model = "Chill 1"
transport = "modbus"

[modbus]
[[modbus.points]]
name = "air"
kind = "temperature"
table = "holding"
address = 10
scale = 0.1
"""


def write(tmp_path, text, name="acme-chill.toml"):
    p = tmp_path / name
    p.write_text(text.replace("{id}", p.stem))
    return str(p)


def test_builtin_library_loads_and_has_the_dixell_maps():
    lib = load_library()
    xr77 = lib.get("dixell-xr77u")
    assert xr77 is not None
    names = {p.name: p for p in xr77.points}
    assert names["room_temp"].address == 256 and names["room_temp"].scale == 0.1
    assert names["compressor_on"].table == "coil" and names["compressor_on"].address == 542
    assert names["setpoint"].writable


def test_profile_errors_name_line_and_field(tmp_path):
    text = (
        GOOD + '\n[[modbus.points]]\nname = "air"\nkind = "warmth"\ntable = "coil"\naddress = 11\n'
    )
    with pytest.raises(ValidationError) as info:
        load_profile(write(tmp_path, text))
    got = [str(i) for i in info.value.issues]
    assert any(":16: modbus.points[1].kind: must be one of" in g for g in got)


def test_duplicate_point_name_and_overlapping_registers(tmp_path):
    text = GOOD + (
        '\n[[modbus.points]]\nname = "air"\nkind = "temperature"\ntable = "holding"\n'
        'address = 9\ntype = "int32"\n'
    )
    with pytest.raises(ValidationError) as info:
        load_profile(write(tmp_path, text))
    got = " | ".join(str(i) for i in info.value.issues)
    assert ":15: modbus.points[1].name: duplicate point name 'air'" in got
    assert "holding register 10 is already used by point 'air'" in got


def test_bit_table_must_be_bool(tmp_path):
    text = GOOD.replace('table = "holding"', 'table = "coil"')
    with pytest.raises(ValidationError, match="a coil point must have type 'bool'"):
        load_profile(write(tmp_path, text))


def test_id_must_match_file_name(tmp_path):
    with pytest.raises(ValidationError, match="must match the file name"):
        load_profile(write(tmp_path, GOOD.replace("{id}", "other-id")))


def test_command_must_target_a_writable_point(tmp_path):
    text = GOOD + '\n[[modbus.commands]]\nname = "set_air"\npoint = "air"\n'
    with pytest.raises(ValidationError, match="point 'air' is not writable"):
        load_profile(write(tmp_path, text))


def test_profiles_cli(tmp_path, capsys):
    assert main(["profiles", "list"]) == 0
    assert "dixell-xr77u" in capsys.readouterr().out
    assert main(["profiles", "show", "dixell-xr77u"]) == 0
    assert "compressor_on" in capsys.readouterr().out
    assert main(["profiles", "show", "dixell-xr7"]) == 2
    assert "did you mean" in capsys.readouterr().err
    good = write(tmp_path, GOOD)
    assert main(["profiles", "check", good]) == 0
    bad = write(tmp_path, GOOD.replace("address = 10", "address = -1"), "acme-bad.toml")
    assert main(["profiles", "check", bad]) == 2
    assert "modbus.points[0].address: must be at least 0" in capsys.readouterr().err
