"""The venue config loader: typed results, and every error with file, line and field."""

from __future__ import annotations

import string

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beerflow_edge.cli import main
from edge_agent.config.loader import load_config, load_config_text
from edge_agent.errors import ValidationError
from firmware_profiles.loader import load_library
from tests.conftest import MINIMAL_VENUE

LIBRARY = load_library()


def issues(write_config, text: str) -> list[str]:
    path = write_config(text)
    with pytest.raises(ValidationError) as info:
        load_config(path, LIBRARY)
    return [str(i) for i in info.value.issues]


def test_minimal_config_gets_documented_defaults(write_config, tmp_path):
    cfg = load_config(write_config(MINIMAL_VENUE), LIBRARY)
    assert cfg.venue.id == "the-crown"
    assert cfg.venue.locale == "en"
    assert cfg.venue.food_safety_region == "uk"
    assert cfg.storage.telemetry_sync == "full"
    # relative paths are resolved against the config file, not the working directory
    assert cfg.storage.path == str(tmp_path / "beerflow.db")
    assert cfg.api.socket == str(tmp_path / "api.sock")


def test_full_config_loads_into_frozen_dataclasses(write_config):
    cfg = load_config(
        write_config(
            MINIMAL_VENUE
            + """
            [storage]
            path = "/var/lib/beerflow/store.db"
            disk_quota_mb = 512
            [[buses]]
            id = "rs485-1"
            port = "/dev/ttyUSB0"
            baudrate = 19200
            parity = "E"
            [[devices]]
            id = "walk-in"
            profile = "dixell-xr77u"
            bus = "rs485-1"
            unit_id = 3
            zone = "kitchen"
            label = "Walk-in"
            [[devices]]
            id = "bar-fridge"
            profile = "dixell-xr60cx"
            host = "192.0.2.10"
            [cloud]
            url = "https://cloud.example.com"
            """
        ),
        LIBRARY,
    )
    assert cfg.storage.path == "/var/lib/beerflow/store.db"
    assert cfg.buses[0].parity == "E" and cfg.buses[0].baudrate == 19200
    assert cfg.device("walk-in").unit_id == 3
    assert cfg.cloud is not None and cfg.cloud.url.startswith("https://")
    with pytest.raises(AttributeError):
        cfg.venue.id = "other"  # type: ignore[misc]


def test_unknown_key_names_line_and_suggests(write_config):
    got = issues(write_config, MINIMAL_VENUE + "locale_x = 1\n[storage]\nretention = 3\n")
    assert any(":5: venue.locale_x: unknown key; did you mean 'locale'?" in g for g in got)
    assert any(":7: storage.retention: unknown key" in g for g in got)


def test_wrong_type_names_file_line_and_field(write_config):
    text = MINIMAL_VENUE + '[storage]\ndisk_quota_mb = "lots"\n'
    (got,) = issues(write_config, text)
    assert got.endswith("venue.toml:6: storage.disk_quota_mb: must be an integer (got a string)")


def test_every_problem_is_reported_at_once(write_config):
    text = """\
    [venue]
    id = "Bad Id"
    name = ""
    locale = "fr"
    """
    got = issues(write_config, text)
    assert len(got) == 3
    assert any(":2: venue.id:" in g for g in got)
    assert any(":3: venue.name: must not be empty" in g for g in got)
    assert any(":4: venue.locale: must be one of 'en', 'it'" in g for g in got)


def test_duplicate_device_ids(write_config):
    text = (
        MINIMAL_VENUE
        + """
[[devices]]
id = "fridge"
profile = "dixell-xr77u"
host = "127.0.0.1"

[[devices]]
id = "fridge"
profile = "dixell-xr77u"
host = "127.0.0.2"
"""
    )
    (got,) = issues(write_config, text)
    assert ":12: devices[1].id: duplicate device id 'fridge' (first at devices[0])" in got


def test_unknown_profile_with_suggestion(write_config):
    text = MINIMAL_VENUE + '[[devices]]\nid = "f"\nprofile = "dixell-xr77"\nhost = "h"\n'
    (got,) = issues(write_config, text)
    assert ":7: devices[0].profile: unknown profile 'dixell-xr77'" in got
    assert "did you mean 'dixell-xr77u'" in got


def test_device_on_undefined_bus(write_config):
    text = (
        MINIMAL_VENUE
        + """
[[buses]]
id = "rs485-1"
port = "/dev/ttyUSB0"

[[devices]]
id = "f"
profile = "dixell-xr77u"
bus = "rs485-2"
"""
    )
    (got,) = issues(write_config, text)
    assert ":13: devices[0].bus: undefined bus 'rs485-2' (buses: rs485-1)" in got


@pytest.mark.parametrize(
    ("settings_text", "expected"),
    [
        ("baudrate = 9601", "baudrate 9601 is not a standard rate"),
        ("stopbits = 1.5", "1.5 stop bits exist only with 5 data bits"),
        ("bytesize = 9", "bytesize must be 5, 6, 7 or 8"),
        ('parity = "X"', "must be one of 'N', 'E', 'O'"),
    ],
)
def test_impossible_serial_settings(write_config, settings_text, expected):
    text = MINIMAL_VENUE + f'[[buses]]\nid = "b"\nport = "/dev/ttyS0"\n{settings_text}\n'
    (got,) = issues(write_config, text)
    assert expected in got
    assert "buses[0]" in got


def test_modbus_rtu_needs_eight_data_bits(write_config):
    text = (
        MINIMAL_VENUE
        + """
[[buses]]
id = "b"
port = "/dev/ttyS0"
bytesize = 7

[[devices]]
id = "f"
profile = "dixell-xr77u"
bus = "b"
"""
    )
    (got,) = issues(write_config, text)
    assert ":9: buses[0].bytesize: Modbus RTU needs 8 data bits" in got


def test_device_needs_exactly_one_of_bus_and_host(write_config):
    text = MINIMAL_VENUE + '[[devices]]\nid = "f"\nprofile = "dixell-xr77u"\n'
    (got,) = issues(write_config, text)
    assert "devices[0]" in got and "exactly one" in got


def test_two_devices_on_one_address(write_config):
    text = MINIMAL_VENUE + (
        '[[devices]]\nid = "a"\nprofile = "dixell-xr77u"\nhost = "h"\nunit_id = 2\n'
        '[[devices]]\nid = "b"\nprofile = "dixell-xr77u"\nhost = "h"\nunit_id = 2\n'
    )
    (got,) = issues(write_config, text)
    assert "devices[1].unit_id" in got


def test_unknown_timezone(write_config):
    text = MINIMAL_VENUE.replace("Europe/London", "Europe/Atlantis")
    (got,) = issues(write_config, text)
    assert ":4: venue.timezone: unknown time zone 'Europe/Atlantis'" in got


def test_syntax_error_names_the_line(write_config):
    (got,) = issues(write_config, MINIMAL_VENUE + "[[devices]\n")
    assert ":5: TOML syntax error" in got


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValidationError, match="cannot read"):
        load_config(str(tmp_path / "nope.toml"), LIBRARY)


def test_config_check_cli_exit_codes(write_config, capsys):
    good = write_config(MINIMAL_VENUE, "good.toml")
    assert main(["config", "check", good]) == 0
    assert "OK" in capsys.readouterr().out
    bad = write_config(MINIMAL_VENUE + "bogus = 1\n", "bad.toml")
    assert main(["config", "check", bad]) == 2
    err = capsys.readouterr().err
    assert "bad.toml:5: venue.bogus: unknown key" in err


def test_run_refuses_to_start_on_a_bad_config(write_config, capsys):
    bad = write_config(MINIMAL_VENUE + '[[devices]]\nid = "x"\nprofile = "nope"\nhost = "h"\n')
    assert main(["run", "--config", bad]) == 2
    assert "refusing to start" in capsys.readouterr().err


# ---- the loader never crashes, whatever it is given --------------------------------------

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
keys = st.sampled_from(
    [
        "venue",
        "id",
        "name",
        "timezone",
        "locale",
        "storage",
        "path",
        "devices",
        "buses",
        "profile",
        "host",
        "port",
        "unit_id",
        "bus",
        "baudrate",
        "stopbits",
        "api",
        "cloud",
        "url",
        "x",
        "disk_quota_mb",
        "profiles",
        "dirs",
    ]
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)


def _issues_or_none(text: str):
    """None when the text is a valid config; its issues otherwise. Anything else propagates."""
    try:
        load_config_text(text, "fuzz.toml", LIBRARY)
    except ValidationError as exc:
        return exc.issues
    return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(keys, toml_values, max_size=6))
def test_loader_reports_never_crashes_on_structured_input(doc):
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return  # not representable as TOML (e.g. mixed arrays in old writers)
    issues = _issues_or_none(text)
    if issues is not None:
        assert issues
        assert all(i.file == "fuzz.toml" for i in issues)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable, max_size=200))
def test_loader_reports_never_crashes_on_arbitrary_text(text):
    issues = _issues_or_none(text)
    assert issues is None or len(issues) > 0


def test_outbox_quota_must_fit_in_the_disk_quota(write_config):
    text = MINIMAL_VENUE + (
        '[storage]\ndisk_quota_mb = 256\n[cloud]\nurl = "https://c.example"\n'
        "outbox_quota_mb = 512\n"
    )
    (got,) = issues(write_config, text)
    assert ":9: cloud.outbox_quota_mb: must be below storage.disk_quota_mb (256)" in got


def test_a_local_api_beyond_loopback_is_refused_unless_meant(write_config):
    text = MINIMAL_VENUE + '\n[api]\ntcp_host = "0.0.0.0"\ntcp_port = 8088\n'
    with pytest.raises(ValidationError) as info:
        load_config(write_config(text))
    msg = str(info.value)
    assert "api.tcp_host" in msg and "loopback" in msg and "venue.toml:7" in msg
    cfg = load_config(write_config(text + "allow_remote = true\n"))
    assert cfg.api.tcp_host == "0.0.0.0" and cfg.api.allow_remote
    cfg = load_config(write_config(MINIMAL_VENUE + '\n[api]\ntcp_host = "::1"\ntcp_port = 8088\n'))
    assert cfg.api.tcp_host == "::1"


@pytest.mark.parametrize(
    ("tail", "where", "what"),
    [
        ("\n[storage]\ndisk_quota_mb = " + "9" * 400 + "\n", ":7: storage.disk_quota_mb", "range"),
        ("\n[storage]\nraw_retention_days = " + "9" * 400 + "\n", ":7:", "finite"),
        ("\n[storage]\ndisk_quota_mb = " + "9" * 5000 + "\n", ":7:", "too large"),
        ("\nx = " + "[" * 3000 + "]" * 3000 + "\n", ":6: x", "nested too deeply"),
        ("\nx = " + "{a=" * 3000 + "1" + "}" * 3000 + "\n", ":6: x", "nested too deeply"),
    ],
)
def test_huge_numbers_and_deep_nesting_are_located_errors(write_config, tail, where, what):
    with pytest.raises(ValidationError) as info:
        load_config(write_config(MINIMAL_VENUE + tail), LIBRARY)
    msg = str(info.value)
    assert where in msg and what in msg, msg[:300]


def test_rules_loader_locates_them_too(tmp_path):
    from rules.model import load_rules

    for text in ("x = " + "[" * 3000 + "]" * 3000 + "\n", "x = " + "9" * 5000 + "\n"):
        p = tmp_path / "rules.toml"
        p.write_text(text)
        with pytest.raises(ValidationError, match=r"rules\.toml:1"):
            load_rules(str(p), "uk")
