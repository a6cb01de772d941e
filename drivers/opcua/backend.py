"""The I/O half of the OPC-UA driver: one asyncua client session to one device.

Everything asyncua raises is translated here (`raise ... from`): DeviceIOError when the device
cannot be reached or the connection broke, DeviceRejected when the device answered with a bad
status. Timeouts use `asyncio.timeout`, which (unlike 3.11's `wait_for`) never swallows a
cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from drivers.errors import DeviceIOError, DeviceRejected
from drivers.opcua.certs import Identity, thumbprint
from edge_agent.config.opcua_address import Address
from firmware_profiles.sections.opcua import ArgType, OpcuaSection, path_steps

log = logging.getLogger(__name__)

Security = Literal["none", "sign", "sign_and_encrypt"]
MODES = {
    "sign": ua.MessageSecurityMode.Sign,
    "sign_and_encrypt": ua.MessageSecurityMode.SignAndEncrypt,
}
ARG_VARIANTS: dict[ArgType, ua.VariantType] = {
    "bool": ua.VariantType.Boolean,
    "int16": ua.VariantType.Int16,
    "uint16": ua.VariantType.UInt16,
    "int32": ua.VariantType.Int32,
    "uint32": ua.VariantType.UInt32,
    "float": ua.VariantType.Float,
    "double": ua.VariantType.Double,
    "string": ua.VariantType.String,
}
# Errors that mean "the connection is gone or never came up".
IO_ERRORS = (OSError, TimeoutError, ConnectionError, UaError)

OnChange = Callable[[str, Any, bool], Awaitable[None]]


def _status_text(code: ua.StatusCode) -> str:
    try:
        code.check()
    except UaStatusCodeError as exc:
        return type(exc).__name__
    return "Good"


class _Handler:
    """asyncua calls this from its own task for every data change."""

    def __init__(self, names: dict[Any, str], on_change: OnChange) -> None:
        self.names = names
        self.on_change = on_change

    async def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        name = self.names.get(node.nodeid)
        if name is None:
            return
        status: ua.StatusCode = data.monitored_item.Value.StatusCode
        await self.on_change(name, val, status.is_good())


class UaSession:
    """One connected session: resolve the profile's nodes, read, subscribe, write, call."""

    def __init__(
        self,
        device_id: str,
        address: Address,
        section: OpcuaSection,
        security: Security,
        identity: Identity | None,
        pki_dir: str | None,
    ) -> None:
        self.device_id = device_id
        self.address = address
        self.section = section
        self.security = security
        self.identity = identity
        self.pki_dir = pki_dir
        self.lost = asyncio.Event()
        # asyncua reads the server status every second by default to notice a dead session; an
        # encrypted read per device per second was most of the driver's CPU at idle. Data-change
        # subscriptions and the poll/refresh cycle notice a dead server anyway.
        self.client = Client(address.url, timeout=section.timeout_s, watchdog_intervall=10.0)
        self.client.connection_lost_callback = self._on_lost
        self.nodes: dict[str, Node] = {}
        self.variants: dict[str, str] = {}  # point -> lower-case VariantType name
        self.missing: list[str] = []
        self.device: Node | None = None
        self._ns: dict[str, int] = {}
        self._connected = False

    async def _on_lost(self, exc: Exception) -> None:
        self.lost.set()

    # ---- connect -----------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            async with asyncio.timeout(self.section.timeout_s * 3):
                if self.security != "none":
                    await self._secure()
                await self.client.connect()
                self._connected = True
        except UaStatusCodeError as exc:
            raise DeviceRejected(f"connect refused: {type(exc).__name__}") from exc
        except IO_ERRORS as exc:
            raise DeviceIOError(f"cannot connect to {self.address.url}: {exc!r}") from exc

    async def _secure(self) -> None:
        if self.identity is None:
            raise DeviceRejected("secure connection asked for but the box has no certificate")
        self.client.application_uri = self.identity.application_uri
        mode = MODES[self.security]
        endpoints = await self.client.connect_and_get_server_endpoints()
        try:
            ep = Client.find_endpoint(endpoints, mode, SecurityPolicyBasic256Sha256.URI)
        except UaError as exc:
            raise DeviceRejected(
                f"the device offers no Basic256Sha256 {mode.name} endpoint"
            ) from exc
        server_der = bytes(ep.ServerCertificate)
        self._pin(server_der)
        await self.client.set_security(
            SecurityPolicyBasic256Sha256,
            self.identity.cert_path,
            self.identity.key_path,
            server_certificate=server_der,
            mode=mode,
        )

    def _pin(self, server_der: bytes) -> None:
        """Trust the device's certificate on first use and refuse a different one later: a
        replaced certificate is either a replaced device or someone in the middle."""
        if self.pki_dir is None:
            return
        pinned = Path(self.pki_dir, "servers", f"{self.device_id}.der")
        if pinned.exists():
            if pinned.read_bytes() != server_der:
                raise DeviceRejected(
                    f"server certificate changed (now {thumbprint(server_der)}); if the device "
                    f"was replaced, delete {pinned} to trust the new one"
                )
            return
        pinned.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pinned.write_bytes(server_der)
        log.info(
            "%s: trusting the device's certificate %s (pinned in %s)",
            self.device_id,
            thumbprint(server_der),
            pinned,
        )

    async def close(self) -> None:
        if not self._connected:
            return
        self._connected = False
        try:
            async with asyncio.timeout(self.section.timeout_s):
                await self.client.disconnect()
        except (*IO_ERRORS, UaStatusCodeError):
            pass  # the connection is being dropped anyway

    # ---- nodes -------------------------------------------------------------------------------

    def _qualified(self, path: str) -> list[str]:
        out = []
        for alias, name in path_steps(path):
            uri = self.section.namespaces[alias]
            if uri not in self._ns:
                raise KeyError(f"the device does not declare namespace {uri}")
            out.append(f"{self._ns[uri]}:{name}")
        return out

    async def resolve(self) -> None:
        """Find the device object and every point's node; points that do not exist are listed
        in `missing` (the profile does not fit this device) rather than failing the device."""
        try:
            array = await self.client.get_namespace_array()
            self._ns = {uri: i for i, uri in enumerate(array)}
            root = await self.client.nodes.objects.get_child(self._qualified(self.section.root))
            self.device = await self._pick_device(root)
            self.nodes, self.missing = {}, []
            for p in self.section.points:
                try:
                    node = await self.device.get_child(self._qualified(p.path))
                except (KeyError, UaStatusCodeError):
                    self.missing.append(p.name)
                    continue
                self.nodes[p.name] = node
                if p.writable:
                    vt = await node.read_data_type_as_variant_type()
                    self.variants[p.name] = vt.name.lower()
        except KeyError as exc:
            raise DeviceRejected(str(exc)) from exc
        except UaStatusCodeError as exc:
            raise DeviceRejected(f"browsing the device failed: {type(exc).__name__}") from exc
        except IO_ERRORS as exc:
            raise DeviceIOError(f"browsing the device failed: {exc!r}") from exc
        if not self.nodes:
            raise DeviceRejected("none of the profile's nodes exist on this device")

    async def _pick_device(self, root: Node) -> Node:
        wanted = self.address.object_name
        candidates = []
        for child in await root.get_children():
            name = (await child.read_browse_name()).Name
            if wanted is not None:
                if name == wanted:
                    return child
                continue
            if self.section.match is None:
                candidates.append(child)
                continue
            try:
                await child.get_child(self._qualified(self.section.match))
            except UaStatusCodeError:
                continue
            candidates.append(child)
        if wanted is not None:
            raise DeviceRejected(f"no object named {wanted!r} under {self.section.root}")
        if len(candidates) != 1:
            raise DeviceRejected(
                f"{len(candidates)} matching device objects under {self.section.root}; "
                "name one with '#ObjectName' at the end of the address"
            )
        return candidates[0]

    # ---- data --------------------------------------------------------------------------------

    async def read(self) -> list[tuple[str, Any, str | None]]:
        """(point, raw value, None) or (point, None, bad status) for every resolved point."""
        names = list(self.nodes)
        try:
            values = await self.client.read_attributes([self.nodes[n] for n in names])
        except UaStatusCodeError as exc:
            raise DeviceRejected(f"read refused: {type(exc).__name__}") from exc
        except IO_ERRORS as exc:
            raise DeviceIOError(f"read failed: {exc!r}") from exc
        out: list[tuple[str, Any, str | None]] = []
        for name, dv in zip(names, values, strict=True):
            status = dv.StatusCode
            if status is not None and not status.is_good():
                out.append((name, None, _status_text(status)))
            else:
                out.append((name, dv.Value.Value if dv.Value is not None else None, None))
        return out

    async def subscribe(self, on_change: OnChange) -> str | None:
        """Subscribe to every resolved node; None when done, else why it failed."""
        names = {node.nodeid: name for name, node in self.nodes.items()}
        try:
            sub = await self.client.create_subscription(
                self.section.publishing_interval_ms, _Handler(names, on_change)
            )
            handles = await sub.subscribe_data_change(list(self.nodes.values()))
        except UaStatusCodeError as exc:
            return type(exc).__name__
        except IO_ERRORS as exc:
            raise DeviceIOError(f"subscribe failed: {exc!r}") from exc
        bad = [
            h
            for h in (handles if isinstance(handles, list) else [handles])
            if not isinstance(h, int)
        ]
        if bad:
            try:
                await sub.delete()
            except (*IO_ERRORS, UaStatusCodeError):
                pass
            return f"{len(bad)} monitored item(s) refused"
        return None

    async def write(self, point: str, raw: Any) -> None:
        vt = ua.VariantType[_variant_key(self.variants[point])]
        try:
            await self.nodes[point].write_value(ua.DataValue(ua.Variant(raw, vt)))
        except UaStatusCodeError as exc:
            raise DeviceRejected(f"write refused: {type(exc).__name__}") from exc
        except IO_ERRORS as exc:
            raise DeviceIOError(f"write failed: {exc!r}") from exc

    async def read_one(self, point: str) -> Any:
        try:
            return await self.nodes[point].read_value()
        except UaStatusCodeError as exc:
            raise DeviceRejected(f"read back refused: {type(exc).__name__}") from exc
        except IO_ERRORS as exc:
            raise DeviceIOError(f"read back failed: {exc!r}") from exc

    async def call(self, obj: str | None, method: str, args: list[tuple[Any, ArgType]]) -> Any:
        assert self.device is not None
        try:
            target = (
                self.device if obj is None else await self.device.get_child(self._qualified(obj))
            )
            (qualified,) = self._qualified(method)
            variants = [ua.Variant(v, ARG_VARIANTS[t]) for v, t in args]
            return await target.call_method(qualified, *variants)
        except KeyError as exc:
            raise DeviceRejected(str(exc)) from exc
        except UaStatusCodeError as exc:
            raise DeviceRejected(f"call refused: {type(exc).__name__}") from exc
        except IO_ERRORS as exc:
            raise DeviceIOError(f"call failed: {exc!r}") from exc


def _variant_key(lower: str) -> str:
    for name in ua.VariantType.__members__:
        if name.lower() == lower:
            return name
    raise KeyError(lower)
