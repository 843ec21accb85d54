"""Where a webhook may be sent: never to this machine, the private network or a cloud's
metadata service (server-side request forgery), unless the operator allows it.

A URL is checked when an endpoint is created or changed, and again before every delivery on the
addresses its host resolves to then (a name may point elsewhere later). Redirects are never
followed. `HERON_PLUGINS_WEBHOOK_ALLOW_HOSTS` lists what is allowed anyway: host names, or
addresses and CIDR ranges such as `127.0.0.0/8`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Allowed:
    hosts: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowed:
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def covers(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


class Refused(Exception):
    """The URL may not be a webhook's target; the message says why."""


def check_shape(url: str) -> str:
    """The URL's host, once its shape is a webhook's: http(s), a host, no credentials."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused("the URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise Refused("the URL must not hold credentials; the signature authenticates Heron")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused("the URL has no host")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise Refused("the URL's port is not a number") from None
    return host


def _forbidden(address: Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return not address.is_global or address.is_multicast


async def check(url: str, allowed: Allowed) -> None:
    """Refuse a URL whose host is (or resolves to) an address a webhook may not reach."""
    host = check_shape(url)
    if host.lower() in allowed.hosts:
        return
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
        except socket.gaierror:
            raise Refused(f"the host {host!r} does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if _forbidden(address) and not allowed.covers(address):
            raise Refused(
                f"the host {host!r} is {address}, a loopback, private, link-local or metadata "
                "address; allow it with HERON_PLUGINS_WEBHOOK_ALLOW_HOSTS if it is meant"
            )
