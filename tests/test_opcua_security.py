"""SignAndEncrypt with the box's own certificate against a device that only trusts listed
clients: rejected until an installer trusts the box's certificate, then readings flow. Also the
box's key file mode, the certificate's application URI, and pinning of the device certificate."""

from __future__ import annotations

import asyncio
import os
import random
import stat
from pathlib import Path

import pytest
from cryptography import x509

from drivers.errors import DeviceRejected
from drivers.opcua.backend import UaSession
from drivers.opcua.certs import ensure_identity
from drivers.opcua.coordinator import BACKOFF_CAP_S, OpcuaCoordinator
from edge_agent.bus import Bus
from edge_agent.clock import ManualClock
from edge_agent.config.opcua_address import parse_address
from edge_agent.health import HealthRegistry
from firmware_profiles.loader import load_library
from simulators.opcua.combi_server import CombiServer
from tests.helpers import until
from tests.peers.opcua import drain, models, reading_tap

PROFILE = load_library().get("opc30200-combi-steamer")
APP_URI = "urn:beerflow-edge:the-crown"


def test_box_identity_is_made_once_with_a_private_key(tmp_path):
    d = tmp_path / "opcua-pki"
    first = ensure_identity(d, APP_URI)
    assert first.created
    assert stat.S_IMODE(os.stat(first.key_path).st_mode) == 0o600
    cert = x509.load_der_x509_certificate(Path(first.cert_path).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [APP_URI]
    assert cert.public_key().key_size == 2048
    again = ensure_identity(d, APP_URI)
    assert not again.created and again.thumbprint == first.thumbprint


async def test_sign_and_encrypt_rejected_until_trusted_then_readings(tmp_path):
    clock = ManualClock(1_750_000_000.0)
    trust = tmp_path / "trusted"
    trust.mkdir()
    server = CombiServer(
        models(clock),
        clock,
        pki_dir=str(tmp_path / "sim-pki"),
        security=("sign", "sign_and_encrypt"),
        trust_dir=str(trust),
    )
    await server.start()
    box_pki = tmp_path / "box-pki"
    identity = ensure_identity(box_pki, APP_URI)
    bus = Bus()
    tap = reading_tap(bus)
    health = HealthRegistry().register("combi", "opcua")
    assert PROFILE is not None and PROFILE.opcua is not None
    coord = OpcuaCoordinator(
        "combi",
        parse_address(f"{server.url}#Combi_2"),
        "sign_and_encrypt",
        PROFILE.opcua,
        bus,
        clock,
        health,
        identity=identity,
        pki_dir=str(box_pki),
        rng=random.Random(2),
    )
    task = asyncio.create_task(coord.run())
    try:
        await until(lambda: health.errors >= 1, 10, "untrusted client refused")
        assert "Untrusted" in (health.last_error or ""), health.last_error
        assert coord.connects == 0 and not drain(tap)

        # The installer copies the box's certificate into the oven's trust list.
        await server.trust(Path(identity.cert_path).read_bytes(), "beerflow-box")
        for _ in range(4):
            await clock.advance(BACKOFF_CAP_S)
            if coord.mode == "subscription":
                break
            await asyncio.sleep(0.3)
        await until(lambda: coord.mode == "subscription", 10, "secure session")
        values = {r.point: r.value for r in drain(tap)}
        assert values["mode"] == "standby" and values["door_open"] is False
        # the device's certificate was pinned on first use
        pinned = box_pki / "servers" / "combi.der"
        assert pinned.read_bytes() == server.server_cert_der
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        await server.stop()

    # A device whose certificate no longer matches the pinned one is refused.
    (box_pki / "servers" / "combi.der").write_bytes(b"not the same certificate")
    await server.start()
    try:
        session = UaSession(
            "combi",
            parse_address(server.url),
            PROFILE.opcua,
            "sign_and_encrypt",
            identity,
            str(box_pki),
        )
        with pytest.raises(DeviceRejected, match="server certificate changed"):
            await session.open()
        await session.close()
    finally:
        await server.stop()
