"""Pure parts of the OPC-UA driver: value decoding, command checks, addresses, the profile
section's validation and the venue config's device checks; and the combi steamer model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import CodecError, CommandRejected
from drivers.opcua import codec
from edge_agent.config.loader import load_config
from edge_agent.config.opcua_address import parse_address
from edge_agent.errors import ValidationError
from firmware_profiles.loader import load_library, load_profile
from simulators.opcua.combi_model import CombiModel, Mode
from tests.conftest import MINIMAL_VENUE

PROFILE = load_library().get("opc30200-combi-steamer")
assert PROFILE is not None and PROFILE.opcua is not None
POINTS = {p.name: p for p in PROFILE.opcua.points}
COMMANDS = {c.name: c for c in PROFILE.opcua.commands}


def test_decode_enum_numbers_and_text():
    assert codec.decode_value(POINTS["mode"], 2) == "preheat"
    assert codec.decode_value(POINTS["mode"], 10) == "error"
    assert codec.decode_value(POINTS["chamber_temp"], 181.25) == 181.25
    assert codec.decode_value(POINTS["door_open"], True) is True
    assert codec.decode_value(POINTS["time_remaining"], 90) == 90
    assert codec.decode_value(POINTS["program"], "Bread") == "Bread"
    for bad in (11, True, "2", None, float("nan"), b"\x00"):
        point = POINTS["mode"] if bad != float("nan") else POINTS["chamber_temp"]
        with pytest.raises(CodecError):
            codec.decode_value(point, bad)
    with pytest.raises(CodecError):
        codec.decode_value(POINTS["chamber_temp"], float("inf"))


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=2000),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
)


@given(name=st.sampled_from(sorted(POINTS)), raw=values)
def test_garbage_values_decode_or_raise_codec_error(name, raw):
    try:
        out = codec.decode_value(POINTS[name], raw)
    except CodecError:
        return
    assert isinstance(out, bool | int | float | str)


@given(args=st.dictionaries(st.text(max_size=12), values, max_size=6))
def test_garbage_command_args_are_rejected_never_crash(args):
    for spec in COMMANDS.values():
        try:
            if spec.point is None:
                codec.call_args(spec, args)
            else:
                codec.write_value(spec, POINTS[spec.point], args)
        except CommandRejected:
            pass


def test_write_and_call_checks():
    spec, point = COMMANDS["set_temperature"], POINTS["set_temperature"]
    assert codec.write_value(spec, point, {"value": 200}) == 200.0
    with pytest.raises(CommandRejected, match="below the minimum 30"):
        codec.write_value(spec, point, {"value": 10})
    with pytest.raises(CommandRejected, match="unexpected"):
        codec.write_value(spec, point, {"value": 100, "extra": 1})
    assert codec.raw_for_node(point, 200.0, "double") == 200.0
    assert codec.raw_for_node(point, 200.0, "int16") == 200
    with pytest.raises(CommandRejected, match="whole numbers"):
        codec.raw_for_node(point, 200.5, "int32")
    args = {"program": "P", "mode": 6, "temperature": 200, "duration_s": 600, "core_target": 0}
    out = codec.call_args(COMMANDS["start_program"], args)
    assert out == [
        ("P", "string"),
        (6, "int32"),
        (200.0, "double"),
        (600, "uint32"),
        (0.0, "double"),
    ]
    with pytest.raises(CommandRejected, match="whole number"):
        codec.call_args(COMMANDS["start_program"], {**args, "duration_s": 600.5})
    with pytest.raises(CommandRejected, match="longer than 64"):
        codec.call_args(COMMANDS["start_program"], {**args, "program": "x" * 65})


def test_addresses():
    a = parse_address("opc.tcp://10.0.0.5:4840/oven#Combi_1")
    assert a.url == "opc.tcp://10.0.0.5:4840/oven" and a.object_name == "Combi_1"
    assert parse_address("opc.tcp://oven.local:4840").object_name is None
    for bad in ("http://x:1/", "opc.tcp://:4840/", "opc.tcp://host/", "opc.tcp://h:99999/"):
        with pytest.raises(ValueError, match=r"URL|port"):
            parse_address(bad)


SECTION = """\
id = "{id}"
vendor = "Acme"
model = "Oven"
transport = "opcua"

[opcua]
namespaces = {{ cke = "http://opcfoundation.org/UA/CommercialKitchenEquipment/" }}
root = "cke:DeviceSet"

[[opcua.points]]
name = "temp"
kind = "temperature"
path = "{path}"
{extra}
"""


def write_profile(tmp_path, path="cke:A/cke:B", extra=""):
    f = tmp_path / "acme-oven.toml"
    f.write_text(SECTION.format(id="acme-oven", path=path, extra=extra))
    return str(f)


def test_profile_errors_name_line_and_field(tmp_path):
    assert load_profile(write_profile(tmp_path)).opcua is not None
    with pytest.raises(ValidationError) as info:
        load_profile(write_profile(tmp_path, path="xx:A"))
    assert ":13: opcua.points[0].path: unknown namespace alias 'xx'" in str(info.value.issues[0])
    with pytest.raises(ValidationError, match="not writable"):
        load_profile(
            write_profile(tmp_path, extra='\n[[opcua.commands]]\nname = "set"\npoint = "temp"\n')
        )
    with pytest.raises(ValidationError, match="enum keys must be integers"):
        load_profile(write_profile(tmp_path, extra='enum = { "one" = "on" }'))
    with pytest.raises(ValidationError, match="exactly one of 'point'"):
        load_profile(write_profile(tmp_path, extra='\n[[opcua.commands]]\nname = "x"\n'))


def device(address):
    return (
        MINIMAL_VENUE
        + f'\n[[devices]]\nid = "oven"\nprofile = "opc30200-combi-steamer"\naddress = "{address}"\n'
    )


def test_venue_device_checks(write_config):
    cfg = load_config(write_config(device("opc.tcp://127.0.0.1:4840/#Combi_1")))
    assert cfg.devices[0].address.endswith("#Combi_1")
    with pytest.raises(ValidationError, match=r"expected an opc\.tcp"):
        load_config(write_config(device("http://oven:80/")))
    with pytest.raises(ValidationError, match="needs 'address'"):
        load_config(
            write_config(
                MINIMAL_VENUE + '\n[[devices]]\nid = "oven"\nprofile = "opc30200-combi-steamer"\n'
            )
        )
    text = device("opc.tcp://h:4840/") + 'host = "h"\n'
    with pytest.raises(ValidationError, match="'host' is not used by a OPC-UA device"):
        load_config(write_config(text))


def test_model_preheats_cooks_and_rests():
    t0 = 1_750_000_000.0
    m = CombiModel(t0, seed=4)
    m.random_doors = False
    m.start_program("Roast", Mode.COMBI_STEAMING, 160.0, 1800, 0.0)
    st_ = m.advance_to(t0 + 60)
    assert st_.mode == Mode.PREHEAT and 24 < st_.chamber < 160
    t = t0
    while m.state.mode == Mode.PREHEAT:
        t += 10
        m.advance_to(t)
        assert t - t0 < 1800, "preheat never ended"
    assert m.state.chamber >= 155 and m.state.time_remaining > 1780
    core_before = m.state.core
    m.advance_to(t + 600)
    assert m.state.core > core_before and m.state.time_remaining <= 1200 + 1
    hot = m.state.chamber
    m.open_door(30)
    m.advance_to(t + 630)
    assert m.state.chamber < hot - 20  # an open door dumps the heat
    m.advance_to(t + 2000)
    assert m.state.mode == Mode.STANDBY and m.state.program == "" and m.state.time_remaining == 0
    assert not m.state.energy_saving
    m.advance_to(t + 2000 + 901)
    assert m.state.energy_saving


def test_model_is_deterministic_with_a_seed():
    def run(seed):
        m = CombiModel(0.0, seed=seed)
        m.start_program("P", Mode.HOT_AIR, 200.0, 20000, 0.0)
        doors = []
        for t in range(0, 20000, 5):
            doors.append(m.advance_to(float(t)).door_open)
        return doors, round(m.state.chamber, 6)

    assert run(7) == run(7)
    assert any(run(7)[0])  # random door openings happen while cooking
