"""An asyncua server exposing combi steamers the way OPC 30200 models them.

Objects/DeviceSet (DI) / <name> : CombiSteamerDeviceType, with its `CombiSteamer` parameter
object holding CombiSteamerMode, SetTemperature, ActualTemperatureChamber_1, the core probe,
IsDoorOpen, TimeRemainingProgram, IsEnergySavingActive, ProgramName… (browse names in the
Commercial Kitchen Equipment namespace). The official nodeset is not needed: the same names and
structure are built here. `StartProgram` is a simulator extension in its own namespace.

Values are pushed from the model on every tick of the injected clock and before every read, so
both subscriptions and polls see live values. Faults: stop/restart on the same port, slow
replies, refused subscriptions. Security: None (optional), Basic256Sha256 Sign and
SignAndEncrypt with a server certificate made at start; a trust directory makes the server
reject any client certificate not in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.common.node import Node
from asyncua.common.structures104 import new_enum
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uatypes import UInt32

from drivers.opcua.certs import make_certificate
from edge_agent.clock import Clock
from simulators.demo_part import DemoPart
from simulators.opcua.combi_model import CombiModel, Mode

log = logging.getLogger(__name__)

NS_DI = "http://opcfoundation.org/UA/DI/"
NS_CKE = "http://opcfoundation.org/UA/CommercialKitchenEquipment/"
NS_SIM = "urn:beerflow:sim:combi"
APP_URI = "urn:beerflow:sim:combi-steamer"
SET_TEMPERATURE_RANGE = (30.0, 300.0)

_POLICIES = {
    "none": ua.SecurityPolicyType.NoSecurity,
    "sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "sign_and_encrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(UInt32(code))


def _typed(value: Any, vt: ua.VariantType) -> Any:
    if vt == ua.VariantType.LocalizedText:
        return ua.LocalizedText(str(value), "en")
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Oven:
    model: CombiModel
    nodes: dict[str, Node] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)


@dataclass
class CombiServer:
    """One OPC-UA server with one or more simulated combi steamers (name -> model)."""

    ovens: dict[str, CombiModel]
    clock: Clock
    pki_dir: str
    host: str = "127.0.0.1"
    port: int = 0
    security: tuple[str, ...] = ("none", "sign", "sign_and_encrypt")
    # Client certificates (DER) allowed to connect; None accepts any (asyncua's default).
    trust_dir: str | None = None
    tick_s: float = 1.0
    reply_delay_s: float = 0.0  # fault: every client read answers this late
    _server: Server | None = None
    _ovens: dict[str, _Oven] = field(default_factory=dict)
    _ticker: asyncio.Task[None] | None = None
    _trust: TrustStore | None = None
    server_cert_der: bytes = b""
    started: bool = False

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/beerflow/combi/"

    # ---- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the address space (about 1 s: asyncua's standard nodes) and listen."""
        if not self.port:
            self.port = free_port()
        if self._server is None:
            await self._build()
        assert self._server is not None
        await self._server.start()
        self.started = True
        await self.sync()
        self._ticker = asyncio.create_task(self._tick(), name=f"sim:combi:{self.port}")

    async def stop(self) -> None:
        """Stop listening (clients see the connection drop); the address space is kept."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._server is not None and self.started:
            self.started = False
            await self._server.stop()
            # A stopped asyncua Server cannot listen again; a restart builds a fresh one.
            self._server = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def trust(self, der: bytes, name: str = "client") -> None:
        """Add a client certificate to the trust list (what an installer does on the oven)."""
        assert self.trust_dir is not None, "server was started without a trust directory"
        await asyncio.to_thread(Path(self.trust_dir, f"{name}.der").write_bytes, der)
        if self._trust is not None:
            await self._trust.load()

    async def reset(self, clock: Clock, models: dict[str, CombiModel]) -> None:
        """Fresh ovens and clock on a running server (tests share one server: init is ~1 s)."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self.clock = clock
        self.ovens = models
        self.reply_delay_s = 0.0
        for name, oven in self._ovens.items():
            oven.model = models[name]
            oven.last.clear()
        if self._server is not None:
            self.refuse_subscriptions(False)
            await self.sync()
            self._ticker = asyncio.create_task(self._tick(), name=f"sim:combi:{self.port}")

    def refuse_subscriptions(self, refuse: bool = True) -> None:
        assert self._server is not None
        self._server.iserver.max_subscriptions = 0 if refuse else 1000

    # ---- address space -----------------------------------------------------------------------

    async def _build(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("BeerFlow combi steamer simulator")
        await server.set_application_uri(APP_URI)
        server.set_security_policy([_POLICIES[s] for s in self.security])
        await self._load_identity(server)
        if self.trust_dir is not None:
            await self._set_trust(server, self.trust_dir)
        server.subscribe_server_callback(CallbackType.PreRead, self._pre_read)
        server.subscribe_server_callback(CallbackType.PostWrite, self._post_write)
        di = await server.register_namespace(NS_DI)
        cke = await server.register_namespace(NS_CKE)
        sim = await server.register_namespace(NS_SIM)
        objects = server.nodes.objects
        base = server.get_node(ObjectIds.BaseObjectType)
        device_type = await base.add_object_type(cke, "CombiSteamerDeviceType")
        param_type = await base.add_object_type(cke, "CombiSteamerParameterType")
        mode_enum = await new_enum(
            server, cke, "CombiSteamerModeEnumeration", [m.name.title() for m in Mode]
        )
        device_set = await objects.add_object(di, "DeviceSet")
        self._ovens = {}
        for name, model in self.ovens.items():
            oven = _Oven(model)
            dev = await device_set.add_object(sim, name, objecttype=device_type.nodeid)
            await dev.add_property(cke, "DeviceClass", "Combi Steamer")
            await dev.add_property(di, "Manufacturer", "BeerFlow Simulators")
            await dev.add_property(di, "Model", "Combi 6-1/1 (simulated)")
            await dev.add_property(di, "SerialNumber", f"SIM-{name}")
            await dev.add_property(cke, "EnergySource", 0)  # Electric
            cs = await dev.add_object(cke, "CombiSteamer", objecttype=param_type.nodeid)
            nodes = oven.nodes
            nodes["mode"] = await cs.add_variable(
                cke,
                "CombiSteamerMode",
                ua.Variant(int(model.state.mode), ua.VariantType.Int32),
                datatype=mode_enum.nodeid,
            )
            for key, browse, vt in (
                ("set_temperature", "SetTemperature", ua.VariantType.Double),
                ("chamber", "ActualTemperatureChamber_1", ua.VariantType.Double),
                ("core", "ActualInternalCoreTemperature_1", ua.VariantType.Double),
                ("core_target", "SetInternalCoreTemperature_1", ua.VariantType.Double),
                ("process_time", "SetProcessTimeProgram", ua.VariantType.UInt32),
                ("time_remaining", "TimeRemainingProgram", ua.VariantType.UInt32),
                ("humidity", "ActualHumidity", ua.VariantType.Int32),
                ("door_open", "IsDoorOpen", ua.VariantType.Boolean),
                ("energy_saving", "IsEnergySavingActive", ua.VariantType.Boolean),
                # OPC 30200 types ProgramName as LocalizedText (the name in the oven's language)
                ("program", "ProgramName", ua.VariantType.LocalizedText),
            ):
                nodes[key] = await cs.add_variable(
                    cke, browse, ua.Variant(_typed(self._value(model, key), vt), vt)
                )
            await nodes["set_temperature"].set_writable()
            await cs.add_method(
                sim,
                "StartProgram",
                self._start_program_cb(oven),
                [
                    ua.VariantType.String,
                    ua.VariantType.Int32,
                    ua.VariantType.Double,
                    ua.VariantType.UInt32,
                    ua.VariantType.Double,
                ],
                [],
            )
            self._ovens[name] = oven
        self._server = server

    def _identity_files(self) -> tuple[str, str]:
        """The server's certificate, kept across restarts (clients pin it)."""
        os.makedirs(self.pki_dir, exist_ok=True)
        cert_path = Path(self.pki_dir, "server-cert.der")
        key_path = Path(self.pki_dir, "server-key.pem")
        if not cert_path.exists():
            der, pem = make_certificate("Combi steamer simulator", APP_URI, server=True)
            key_path.write_bytes(pem)
            key_path.chmod(0o600)
            cert_path.write_bytes(der)
        self.server_cert_der = cert_path.read_bytes()
        return str(cert_path), str(key_path)

    async def _load_identity(self, server: Server) -> None:
        cert_path, key_path = self._identity_files()
        await server.load_certificate(cert_path)
        await server.load_private_key(key_path)

    async def _set_trust(self, server: Server, trust_dir: str) -> None:
        os.makedirs(trust_dir, exist_ok=True)
        self._trust = TrustStore([Path(trust_dir)], [])
        # An empty trust store cannot be loaded (asyncua raises); it then trusts nobody.
        if os.listdir(trust_dir):
            await self._trust.load()
        options = (
            CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
        )
        server.set_certificate_validator(CertificateValidator(options, self._trust))

    # ---- behaviour ---------------------------------------------------------------------------

    @staticmethod
    def _value(model: CombiModel, key: str) -> Any:
        st = model.state
        if key == "mode":
            return int(st.mode)
        if key in ("chamber", "core"):
            return round(float(getattr(st, key)), 2)
        if key == "humidity":
            return round(st.humidity)
        return getattr(st, key)

    async def sync(self) -> None:
        """Advance every model to now and write the values that changed into the nodes."""
        if self._server is None:
            return
        now = self.clock.time()
        for oven in self._ovens.values():
            oven.model.advance_to(now)
            for key, node in oven.nodes.items():
                value = self._value(oven.model, key)
                if oven.last.get(key) == value:
                    continue
                oven.last[key] = value
                vt = await node.read_data_type_as_variant_type()
                if key == "mode":
                    vt = ua.VariantType.Int32
                await self._server.write_attribute_value(
                    node.nodeid, ua.DataValue(ua.Variant(_typed(value, vt), vt))
                )

    async def _tick(self) -> None:
        while True:
            await self.clock.sleep(self.tick_s)
            await self.sync()

    async def _pre_read(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        if not event.is_external:
            return
        if self.reply_delay_s > 0:
            await asyncio.sleep(self.reply_delay_s)
        await self.sync()

    async def _post_write(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        """Apply a client's SetTemperature to the model; refuse (and undo) out-of-range ones."""
        if not event.is_external or self._server is None:
            return
        results = event.response_params
        for i, wv in enumerate(event.request_params.NodesToWrite):
            for oven in self._ovens.values():
                if wv.NodeId != oven.nodes["set_temperature"].nodeid or not results[i].is_good():
                    continue
                value = wv.Value.Value.Value
                lo, hi = SET_TEMPERATURE_RANGE
                if isinstance(value, float) and lo <= value <= hi:
                    oven.model.advance_to(self.clock.time())
                    oven.model.set_temperature(value)
                    oven.last["set_temperature"] = value
                else:
                    results[i] = _status(StatusCodes.BadOutOfRange)
                    old = oven.model.state.set_temperature
                    await self._server.write_attribute_value(
                        wv.NodeId, ua.DataValue(ua.Variant(old, ua.VariantType.Double))
                    )

    def _start_program_cb(self, oven: _Oven) -> Any:
        async def start_program(parent: ua.NodeId, *args: ua.Variant) -> Any:
            try:
                name, mode, temp, duration, core_target = (a.Value for a in args)
                lo, hi = SET_TEMPERATURE_RANGE
                if not (lo <= temp <= hi and 0 < duration <= 86400 and len(name) <= 64):
                    return _status(StatusCodes.BadOutOfRange)
                oven.model.advance_to(self.clock.time())
                oven.model.start_program(name, Mode(mode), temp, duration, core_target)
            except ValueError:
                return _status(StatusCodes.BadInvalidArgument)
            await self.sync()
            return []

        return start_program


async def demo_part(workdir: str, clock: Clock) -> DemoPart:
    """Two combi steamers on one loopback server, reached over SignAndEncrypt: one idle, one
    cooking a roast. The box's own certificate is created on first connect; this demo server
    accepts any client certificate."""
    a = CombiModel(clock.time(), seed=11)
    b = CombiModel(clock.time(), seed=12)
    b.start_program("Roast pork", Mode.COMBI_STEAMING, 160.0, 5400, 72.0)
    server = CombiServer(
        {"Combi_1": a, "Combi_2": b},
        clock,
        pki_dir=os.path.join(workdir, "opcua-sim-pki"),
        security=("sign", "sign_and_encrypt"),
    )
    await server.start()
    blocks = "".join(
        f'\n[[devices]]\nid = "combi-{i}"\nprofile = "opc30200-combi-steamer"\n'
        f'label = "Combi steamer {i}"\nzone = "kitchen"\naddress = "{server.url}#Combi_{i}"\n'
        f'security = "sign_and_encrypt"\n'
        for i in (1, 2)
    )
    return DemoPart(
        blocks,
        server.stop,
        f"OPC-UA combi steamers (OPC 30200) at {server.url}, SignAndEncrypt",
    )
