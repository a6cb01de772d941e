"""Discovery against the simulator: both combi steamers are recognised by their OPC 30200 type
and proposed as [[devices]] entries that load as a valid venue config."""

from __future__ import annotations

import pytest

from drivers.errors import DeviceIOError
from drivers.opcua.discovery import discover
from edge_agent.config.loader import load_config
from simulators.opcua.combi_server import free_port
from tests.conftest import MINIMAL_VENUE
from tests.peers import opcua as peers

pytestmark = pytest.mark.asyncio(loop_scope="module")

# the shared simulator (module-scoped) and per-test fresh ovens
combi_server = peers.combi_server
combi = peers.combi


async def test_discover_proposes_the_combi_steamers(combi, write_config):
    found = await discover(combi.url)
    assert [d["id"] for d in found] == ["combi-1", "combi-2"]
    first = found[0]
    assert first["profile"] == "opc30200-combi-steamer"
    assert first["address"] == f"{combi.url}#Combi_1"
    assert first["security"] == "sign_and_encrypt"  # the strongest the server offers
    assert first["label"] == "Combi Steamer Combi_1"
    blocks = "".join(
        f'\n[[devices]]\nid = "{d["id"]}"\nprofile = "{d["profile"]}"\n'
        f'address = "{d["address"]}"\nsecurity = "{d["security"]}"\n'
        for d in found
    )
    cfg = load_config(write_config(MINIMAL_VENUE + blocks))
    assert [d.id for d in cfg.devices] == ["combi-1", "combi-2"]


async def test_discover_nothing_listening_is_a_clear_error():
    with pytest.raises(DeviceIOError, match="cannot discover"):
        await discover(f"opc.tcp://127.0.0.1:{free_port()}/", timeout_s=1.0)


async def test_demo_part_is_secure_only_and_discoverable_with_the_box_certificate(
    tmp_path, write_config
):
    from drivers.opcua.certs import ensure_identity
    from edge_agent.clock import ManualClock
    from simulators.opcua.combi_server import demo_part

    part = await demo_part(str(tmp_path), ManualClock(1_750_000_000.0))
    try:
        cfg = load_config(write_config(MINIMAL_VENUE + part.config_toml))
        url = cfg.devices[0].address.partition("#")[0]
        with pytest.raises(DeviceIOError, match="only secure endpoints"):
            await discover(url)
        identity = ensure_identity(tmp_path / "box-pki", "urn:beerflow-edge:the-crown")
        found = await discover(url, identity=identity)
        assert [(d["id"], d["security"]) for d in found] == [
            ("combi-1", "sign_and_encrypt"),
            ("combi-2", "sign_and_encrypt"),
        ]
        assert [d["address"] for d in found] == [d.address for d in cfg.devices]
    finally:
        await part.stop()


async def test_discover_cli_browses_a_secure_only_server_with_the_box_certificate(
    tmp_path, write_config, capsys
):
    import asyncio
    import os

    from beerflow_edge.cli import main
    from drivers.opcua.certs import box_pki_dir
    from edge_agent.clock import ManualClock
    from simulators.opcua.combi_server import demo_part

    part = await demo_part(str(tmp_path / "sim"), ManualClock(1_750_000_000.0))
    try:
        cfg_path = write_config(MINIMAL_VENUE)
        url = part.config_toml.split('address = "')[1].partition("#")[0]
        code = await asyncio.to_thread(main, ["discover", "--opcua", url, "-c", cfg_path])
    finally:
        await part.stop()
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "2 device(s) recognised" in err and "combi-1" in out and "combi-2" in out
    # the certificate used is the one the agent will use (beside the store, key private)
    cfg = load_config(cfg_path)
    key = os.path.join(box_pki_dir(cfg.storage.path), "client-key.pem")
    assert os.stat(key).st_mode & 0o077 == 0
