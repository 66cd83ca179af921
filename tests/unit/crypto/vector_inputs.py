"""What the crypto tests share about the published vectors: a device rebuilt from its inputs."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pli.crypto import age
from pli.crypto.identity import DeviceIdentity


def device_of(inputs: dict[str, Any]) -> DeviceIdentity:
    """The device a vector's inputs (x25519 secret, ed25519 seed, email, device, created) name."""
    return DeviceIdentity(
        email=inputs["email"],
        device=inputs["device"],
        age_identity=age.X25519Identity(bytes.fromhex(inputs["x25519_secret_hex"])),
        signing_key=Ed25519PrivateKey.from_private_bytes(bytes.fromhex(inputs["ed25519_seed_hex"])),
        created=inputs["created"],
    )
