"""NATS subjects for events between GAplics, and the rules on the names in them.

Every name that travels in a subject — a GAplic name, a role, a unique gobj name, an
event name — is one subject *token*: ``[A-Za-z0-9_-]+``.  Anything else (a ``.``, ``*``,
``>``, whitespace, an empty name) could split a subject or match more than it names, so
it is rejected with ``RemoteNameError`` saying which name, what it is and what is allowed.

=============================  ==========================================================
purpose                        subject (``P`` is the prefix, ``fsmio`` by default)
=============================  ==========================================================
event to a GAplic's gobj       ``P.ev.<dst_gaplic>.<src_gaplic>.<dst_gobj>.<EVENT>``
event to a role (one member)   ``P.role.<role>.<src_gaplic>.<dst_gobj>.<EVENT>``
event to every member of role  ``P.all.<role>.<src_gaplic>.<dst_gobj>.<EVENT>``
durable event (JetStream)      ``P.dur.<dst_gaplic>.<src_gaplic>.<dst_gobj>.<EVENT>``
broadcast of an exported gobj  ``P.pub.<src_gaplic>.<src_gobj>.<EVENT>``
system notices                 ``P.sys.<gaplic>.<VERB>`` (``STARTED``, ``STOPPING``)
replies                        ``_INBOX_<gaplic>.<boot>.<n>``
=============================  ==========================================================

The sender's GAplic name is a token of every subject it publishes, so that the NATS
server's per-user publish permissions (``P.ev.*.<me>.>``...) make it unforgeable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from fsmio.remote.errors import RemoteNameError

__all__ = [
    "TOKEN_RE",
    "ParsedSubject",
    "Subjects",
    "check_prefix",
    "check_token",
]

TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_ALLOWED: Final = "letters, digits, '_' and '-' (one NATS subject token)"


def check_token(what: str, name: object) -> str:
    """Return ``name`` if it can be one subject token, else raise ``RemoteNameError``."""
    if not isinstance(name, str) or TOKEN_RE.fullmatch(name) is None:
        raise RemoteNameError(
            f"{what} {name!r} cannot be used in a NATS subject: expected {_ALLOWED}"
        )
    return name


def check_prefix(prefix: object) -> str:
    """A subject prefix: one or more tokens joined by dots."""
    if not isinstance(prefix, str) or not all(
        TOKEN_RE.fullmatch(part) for part in prefix.split(".")
    ):
        raise RemoteNameError(
            f"subject prefix {prefix!r} is not valid: expected tokens of {_ALLOWED} joined by '.'"
        )
    return prefix


@dataclass(frozen=True, slots=True)
class ParsedSubject:
    """An incoming event subject, split into its parts."""

    kind: str  # "ev", "role", "all" (every member of a role) or "dur" (JetStream)
    target: str  # the destination GAplic (kind "ev") or role (kind "role")
    src_gaplic: str
    gobj: str
    event: str


class Subjects:
    """Builds and parses the subjects of one GAplic (``me``) under ``prefix``."""

    __slots__ = ("_depth", "me", "prefix")

    def __init__(self, prefix: str, me: str) -> None:
        self.prefix = check_prefix(prefix)
        self.me = check_token("GAplic name", me)
        self._depth = prefix.count(".") + 1

    # What this GAplic subscribes to.
    def my_events(self) -> str:
        return f"{self.prefix}.ev.{self.me}.>"

    def role_events(self, role: str) -> str:
        return f"{self.prefix}.role.{role}.>"

    def broadcasts(self, gaplic: str, gobj: str, event: str | None) -> str:
        return f"{self.prefix}.pub.{gaplic}.{gobj}.{event or '*'}"

    # What it publishes.
    def to_gaplic(self, gaplic: str, gobj: str, event: str) -> str:
        return f"{self.prefix}.ev.{gaplic}.{self.me}.{gobj}.{event}"

    def all_of_role(self, role: str) -> str:
        return f"{self.prefix}.all.{role}.>"

    def to_all(self, role: str, gobj: str, event: str) -> str:
        return f"{self.prefix}.all.{role}.{self.me}.{gobj}.{event}"

    def to_role(self, role: str, gobj: str, event: str) -> str:
        return f"{self.prefix}.role.{role}.{self.me}.{gobj}.{event}"

    def my_broadcast(self, gobj: str, event: str) -> str:
        return f"{self.prefix}.pub.{self.me}.{gobj}.{event}"

    def system(self, verb: str) -> str:
        return f"{self.prefix}.sys.{self.me}.{verb}"

    def inbox_prefix(self) -> str:
        return f"_INBOX_{self.me}"

    def parse_event(self, subject: str) -> ParsedSubject | None:
        """Split an event subject; None if it is not one of ours (or not well formed)."""
        parts = subject.split(".")
        if len(parts) != self._depth + 5:
            return None
        kind, target, src, gobj, event = parts[self._depth :]
        if kind not in ("ev", "role", "all", "dur"):
            return None
        # The tokens are NATS tokens (no '.', '*', '>', blanks): used only to look names
        # up, so they are not matched against TOKEN_RE again on this hot path.
        return ParsedSubject(kind, target, src, gobj, event)

    def parse_broadcast(self, subject: str) -> tuple[str, str, str] | None:
        """``(gaplic, gobj, event)`` of a broadcast subject, or None."""
        parts = subject.split(".")
        if len(parts) != self._depth + 4 or parts[self._depth] != "pub":
            return None
        gaplic, gobj, event = parts[self._depth + 1 :]
        return gaplic, gobj, event
