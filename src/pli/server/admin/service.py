"""Administration: who may reach the admin API, and what it reads."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from pli.store import models


def address_allowed(address: str | None, networks: Sequence[str]) -> bool:
    """True when `address` (a socket peer) is inside one of `networks` (CIDRs).

    An IPv4 client seen through a dual-stack socket (`::ffff:10.0.0.1`) is judged by its IPv4
    address. Anything that is not an IP address (no peer, a Unix socket) is outside.
    """
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(network) for network in networks)


def list_users(session: Session) -> list[models.User]:
    """Every account, oldest first."""
    return list(
        session.scalars(select(models.User).order_by(models.User.created_at, models.User.id))
    )
