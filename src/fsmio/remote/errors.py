"""The exceptions of the remote layer (events between GAplics over NATS).

They are raised at the sender, at once, for what can be known locally: a bad name, a
payload too big, no connection.  What only the network can tell (no responders, a
timeout, the remote's refusal) comes back as an event, never as an exception.
"""

from __future__ import annotations

from fsmio.core.errors import FsmioError

__all__ = [
    "RemoteDisconnectedError",
    "RemoteError",
    "RemoteNameError",
    "RemotePayloadTooLargeError",
]


class RemoteError(FsmioError):
    """Base class of the remote layer's errors."""


class RemoteNameError(RemoteError, ValueError):
    """A GAplic, role, gobj or event name that cannot be one NATS subject token."""


class RemotePayloadTooLargeError(RemoteError, ValueError):
    """The encoded event is larger than the server's ``max_payload``."""


class RemoteDisconnectedError(RemoteError):
    """Not connected to NATS: the event was not sent (nothing is buffered)."""
