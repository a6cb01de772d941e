"""OPC-UA services: a coordinator (its own client session) per device. Devices that use
security share the box's client certificate, created on first use next to the store."""

from __future__ import annotations

import logging
import random

from drivers.base import Devices, DriverContext
from drivers.opcua.certs import Identity, box_application_uri, box_pki_dir, ensure_identity
from drivers.opcua.coordinator import OpcuaCoordinator
from edge_agent.config.opcua_address import parse_address
from edge_agent.supervisor import Service

log = logging.getLogger(__name__)


def pki_dir(ctx: DriverContext) -> str:
    return box_pki_dir(ctx.config.storage.path)


def application_uri(ctx: DriverContext) -> str:
    return box_application_uri(ctx.config.venue.id)


def box_identity(ctx: DriverContext) -> Identity:
    """The box's client certificate, made once per box and shared by its OPC-UA devices."""
    identity: Identity | None = ctx.shared.get("opcua-identity")
    if identity is None:
        identity = ensure_identity(pki_dir(ctx), application_uri(ctx))
        ctx.shared["opcua-identity"] = identity
        log.info(
            "OPC-UA client certificate %s (%s, SHA-1 thumbprint %s): trust it on each device "
            "that uses sign or sign_and_encrypt",
            identity.cert_path,
            "new" if identity.created else "existing",
            identity.thumbprint,
        )
    return identity


def build(ctx: DriverContext, devices: Devices) -> list[Service]:
    services = []
    for dev, profile in devices:
        assert profile.opcua is not None and dev.address is not None  # checked at load
        identity = box_identity(ctx) if dev.security != "none" else None
        coord = OpcuaCoordinator(
            dev.id,
            parse_address(dev.address),
            dev.security,
            profile.opcua,
            ctx.bus,
            ctx.clock,
            ctx.health.register(dev.id, "opcua"),
            identity=identity,
            pki_dir=pki_dir(ctx),
            rng=random.Random(dev.id),
        )
        ctx.commanders[dev.id] = coord
        services.append(Service(f"device:{dev.id}", coord.run, restart=True))
    return services
