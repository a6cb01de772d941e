"""Where an OPC-UA device is: an endpoint URL, and optionally which device object on it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Address:
    url: str  # the endpoint URL, without the fragment
    object_name: str | None  # the device object's browse name, from '#Name'


def parse_address(address: str) -> Address:
    """'opc.tcp://host:port/path#Combi_1' -> Address; ValueError with the reason otherwise."""
    url, _, fragment = address.partition("#")
    parts = urlsplit(url)
    if parts.scheme != "opc.tcp" or not parts.hostname:
        raise ValueError("expected an opc.tcp://host:port/path URL")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    if port is None:
        raise ValueError("the URL needs a port (OPC-UA's usual one is 4840)")
    return Address(url, fragment or None)
