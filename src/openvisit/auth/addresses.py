"""The client's address, as throttling, sessions and the audit log record it.

The connection's peer is the client, unless the peer is one of the configured trusted
proxies (``OPENVISIT_TRUSTED_PROXIES``, none by default): then the proxy's forwarding
header (``OPENVISIT_TRUSTED_PROXY_HEADER``) names it. That header is a list that every
proxy appends to, and a client can put anything at its start, so it is read from the
right: the first address that is not itself a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from openvisit.config import IPNetwork, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(peer: str, forwarded: Sequence[str], settings: Settings) -> str:
    """The client's address given the peer's and the values of the forwarding header
    (every line of it, in order), for these settings."""
    networks = settings.trusted_proxy_networks
    if not networks or not _trusted(_parse(peer), networks):
        return peer
    hops = [
        hop
        for line in forwarded
        for hop in (
            _forwarded_for(line)
            if settings.trusted_proxy_header == "forwarded"
            else _x_forwarded_for(line)
        )
    ]
    client = peer
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            # Not an address ("unknown", an obfuscated name): the last proxy we trust is as
            # far as the chain can be followed.
            break
        client = str(address)
        if not _trusted(address, networks):
            break
    return client


def _x_forwarded_for(line: str) -> list[str]:
    return [hop.strip() for hop in line.split(",") if hop.strip()]


def _forwarded_for(line: str) -> list[str]:
    """The ``for=`` of each element of an RFC 7239 Forwarded header, port and brackets
    removed (``for="[2001:db8::1]:4711"`` is ``2001:db8::1``)."""
    hops = []
    for element in line.split(","):
        value = ""
        for pair in element.split(";"):
            name, _, raw = pair.strip().partition("=")
            if name.strip().lower() == "for":
                value = raw.strip().strip('"')
        if value.startswith("["):
            value = value[1:].partition("]")[0]
        elif value.count(":") == 1:
            value = value.partition(":")[0]
        hops.append(value)
    return hops


def _parse(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress | None, networks: list[IPNetwork]) -> bool:
    return address is not None and any(address in network for network in networks)
