"""Who is really calling: the client address a trusted Heron process vouches for, or the peer.

The gateway knows the client's address (after its own proxy rules); a service behind it only
sees the gateway. The gateway forwards the address in metadata, with the installation's
internal secret (`HERON_INTERNAL_SECRET`) beside it. A service believes the forwarded address
only when the secret matches; any other caller, including one that reaches the service's port
directly, is known by its own peer address, so it cannot pick the address its attempts are
counted under.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

CLIENT_ADDRESS_KEY = "x-heron-client-address"
INTERNAL_SECRET_KEY = "x-heron-internal-secret"
MAX_ADDRESS_LENGTH = 64


def forwarded_client(address: str, secret: str) -> tuple[tuple[str, str], ...]:
    """Metadata telling a service the client's address (nothing without a secret to vouch)."""
    if not secret or not address:
        return ()
    return ((CLIENT_ADDRESS_KEY, address[:MAX_ADDRESS_LENGTH]), (INTERNAL_SECRET_KEY, secret))


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`, `unix:…`)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:].split("]", 1)[0]
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    return peer or "unknown"


def client_address(metadata: Iterable[tuple[str, Any]], peer: str, secret: str) -> str:
    """The address a call's attempts count under: forwarded by a trusted process, else the peer."""
    values = {key: value for key, value in metadata if isinstance(value, str)}
    forwarded = values.get(CLIENT_ADDRESS_KEY, "")
    given = values.get(INTERNAL_SECRET_KEY, "")
    if (
        secret
        and forwarded
        and len(forwarded) <= MAX_ADDRESS_LENGTH
        and hmac.compare_digest(given.encode(), secret.encode())
    ):
        return forwarded
    return peer_host(peer)
