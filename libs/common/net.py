"""Who is asking: the client's address behind trusted proxies, shared by every HTTP service."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection


def client_address(request: HTTPConnection, trusted_proxies: Sequence[str]) -> str:
    """The client's address: the peer, or behind a trusted proxy the last address it added.

    `X-Forwarded-For` is read only when the peer is one of `trusted_proxies` (CIDRs), and then
    from the right, skipping the proxies' own addresses: a client cannot choose its address by
    sending the header itself.
    """
    peer = request.client.host if request.client else ""
    if not trusted_proxies or not in_networks(peer, trusted_proxies):
        return peer
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",")]
    for address in reversed([part for part in forwarded if part]):
        if not in_networks(address, trusted_proxies):
            return address
    return peer


def in_networks(address: str, networks: Sequence[str]) -> bool:
    """Whether `address` lies in one of `networks`; False when it is not an IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)
