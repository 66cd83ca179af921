"""pli: end-to-end encrypted file exchange and storage for health data."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pli.client.sdk import Client


def __getattr__(name: str) -> object:
    # The SDK is imported on first use so `pli serve` does not load the client stack.
    if name == "Client":
        from pli.client.sdk import Client  # noqa: PLC0415

        return Client
    raise AttributeError(name)


__all__ = ["Client", "__version__"]
