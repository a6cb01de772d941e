"""Find kitchen devices on an OPC-UA server and propose `[[devices]]` entries for them.

The server's endpoints say which security it offers (the proposal picks the strongest); its
address space is browsed under each OPC-UA profile's `root`, and an object is recognised by its
type definition's browse name (`type_name`) or by the child every such device has (`match`).
A server that offers no unsecured endpoint is browsed with the box's certificate when given.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from drivers.errors import CodecError, DeviceIOError
from drivers.opcua import codec
from drivers.opcua.certs import Identity
from firmware_profiles.loader import ProfileLibrary, load_library
from firmware_profiles.sections.opcua import OpcuaSection, path_steps

_IO = (OSError, TimeoutError, ConnectionError, UaError)


def _best_security(endpoints: list[ua.EndpointDescription]) -> str:
    offered = {
        (ep.SecurityPolicyUri, ep.SecurityMode)
        for ep in endpoints
        if ep.EndpointUrl.startswith("opc.tcp")
    }
    uri = SecurityPolicyBasic256Sha256.URI
    if (uri, ua.MessageSecurityMode.SignAndEncrypt) in offered:
        return "sign_and_encrypt"
    if (uri, ua.MessageSecurityMode.Sign) in offered:
        return "sign"
    return "none"


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "opcua-device"


async def discover(
    url: str,
    *,
    library: ProfileLibrary | None = None,
    identity: Identity | None = None,
    timeout_s: float = 5.0,
) -> list[dict[str, Any]]:
    """Proposed devices: dicts with id, profile, address, security and label."""
    library = library or load_library()
    profiles = [p for p in library if p.transport == "opcua" and p.opcua is not None]
    client = Client(url, timeout=timeout_s)
    try:
        async with asyncio.timeout(timeout_s * 4):
            endpoints = await client.connect_and_get_server_endpoints()
            security = _best_security(endpoints)
            plain = any(ep.SecurityMode == ua.MessageSecurityMode.None_ for ep in endpoints)
            if not plain:
                if identity is None:
                    raise DeviceIOError(
                        f"{url} offers only secure endpoints; browse it with the box's certificate"
                    )
                client.application_uri = identity.application_uri
                await client.set_security(
                    SecurityPolicyBasic256Sha256,
                    identity.cert_path,
                    identity.key_path,
                    mode=ua.MessageSecurityMode.SignAndEncrypt
                    if security == "sign_and_encrypt"
                    else ua.MessageSecurityMode.Sign,
                )
            await client.connect()
            try:
                return await _browse(client, url, security, profiles)
            finally:
                await client.disconnect()
    except UaStatusCodeError as exc:
        raise DeviceIOError(f"{url} refused discovery: {type(exc).__name__}") from exc
    except _IO as exc:
        raise DeviceIOError(f"cannot discover {url}: {exc!r}") from exc


async def _browse(
    client: Client, url: str, security: str, profiles: list[Any]
) -> list[dict[str, Any]]:
    ns = {uri: i for i, uri in enumerate(await client.get_namespace_array())}
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    for profile in profiles:
        section: OpcuaSection = profile.opcua

        def qualified(path: str, section: OpcuaSection = section) -> list[str] | None:
            out = []
            for alias, name in path_steps(path):
                index = ns.get(section.namespaces[alias])
                if index is None:
                    return None
                out.append(f"{index}:{name}")
            return out

        root_path = qualified(section.root)
        if root_path is None:
            continue
        try:
            root = await client.nodes.objects.get_child(root_path)
        except UaStatusCodeError:
            continue
        for child in await root.get_children():
            name = (await child.read_browse_name()).Name
            if name in seen or not await _is_match(child, section, qualified):
                continue
            seen.add(name)
            kind = await _device_class(child, section, qualified) or profile.model
            found.append(
                {
                    "id": _slug(name),
                    "profile": profile.id,
                    "address": f"{url}#{name}",
                    "security": security,
                    "label": f"{kind} {name}",
                }
            )
    return found


async def _is_match(child: Node, section: OpcuaSection, qualified: Any) -> bool:
    if section.type_name:
        try:
            type_node = await child.read_type_definition()
            if type_node is not None:
                type_name = (await client_node(child, type_node).read_browse_name()).Name
                if type_name == section.type_name:
                    return True
        except UaStatusCodeError:
            pass
    if section.match is not None:
        path = qualified(section.match)
        if path is None:
            return False
        try:
            await child.get_child(path)
            return True
        except UaStatusCodeError:
            return False
    return False


def client_node(child: Node, node_id: ua.NodeId) -> Node:
    return Node(child.session, node_id)


async def _device_class(child: Node, section: OpcuaSection, qualified: Any) -> str | None:
    """OPC 30200's DeviceClass ("Combi Steamer"), when the device has one."""
    for alias, uri in section.namespaces.items():
        if uri.endswith("/CommercialKitchenEquipment/"):
            path = qualified(f"{alias}:DeviceClass")
            if path is None:
                return None
            try:
                value = await child.get_child(path)
                text = codec.scalar("DeviceClass", await value.read_value())
                return text if isinstance(text, str) else None
            except (UaStatusCodeError, CodecError):
                return None
    return None
