"""The NATS server ``authorization`` block for a set of GAplics.

One NATS user per GAplic.  Its permissions let it publish only on subjects that carry its
own name as the sender token, so the server guarantees who sent an event (a forged
``src_gaplic`` is refused), and subscribe only to its own events, its roles, broadcasts
and its own reply inbox::

    publish:   P.ev.*.G.>  P.role.*.G.>  P.all.*.G.>  P.pub.G.>  P.sys.G.>
    subscribe: P.ev.G.>  P.role.<role>.>  P.all.<role>.>  P.pub.>  _INBOX_G.>
    allow_responses: true      (answers to requests, on the requester's inbox only)

With ``peers`` (the GRemote's: the GAplics and roles it may talk to), ``*`` above becomes
each peer, and ``P.pub.>`` their broadcasts only.  And with ``durable``: publish
``P.dur.*.G.>``, and the JetStream API of its stream and of its own consumer ``fsmio_G``
only (info, create, next message, acks).

``fsmio nats-config APP.toml...`` prints it (see ``fsmio.tools``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from fsmio.remote.subjects import Subjects, check_token

__all__ = ["NatsIdentity", "authorization_block", "permissions_for"]


@dataclass(frozen=True)
class NatsIdentity:
    """What the server must know of one GAplic."""

    gaplic: str
    roles: tuple[str, ...] = ()
    subject_prefix: str = "fsmio"
    user: str = ""
    password: str = ""
    #: An nkey *public* key (``U...``): used instead of user/password when given.
    nkey: str = ""
    #: ``durable = true``: the JetStream grants for durable events in ``durable_stream``.
    durable: bool = False
    durable_stream: str = "FSMIO"
    #: GAplic names and roles it may send to (and whose broadcasts it may take); () = any.
    peers: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list, compare=False)


def permissions_for(identity: NatsIdentity) -> dict[str, object]:
    """The ``permissions`` map of one GAplic's user."""
    subjects = Subjects(identity.subject_prefix, identity.gaplic)
    prefix, me = subjects.prefix, subjects.me
    roles = [check_token(f"GAplic {me!r}: role", role) for role in identity.roles]
    peers = [check_token("peer", peer) for peer in identity.peers] or ["*"]
    publish = [
        *(f"{prefix}.{kind}.{peer}.{me}.>" for kind in ("ev", "role", "all") for peer in peers),
        f"{prefix}.pub.{me}.>",
        f"{prefix}.sys.{me}.>",
    ]
    if identity.durable:
        stream = check_token("durable_stream", identity.durable_stream)
        consumer = f"fsmio_{me}"
        api = "$JS.API"
        publish += [
            # Durable events it sends, as itself.
            *(f"{prefix}.dur.{peer}.{me}.>" for peer in peers),
            # Its stream (made if missing) and its own consumer; nothing else.
            f"{api}.STREAM.INFO.{stream}",
            f"{api}.STREAM.CREATE.{stream}",
            f"{api}.CONSUMER.INFO.{stream}.{consumer}",
            f"{api}.CONSUMER.CREATE.{stream}.{consumer}",
            f"{api}.CONSUMER.CREATE.{stream}.{consumer}.>",
            f"{api}.CONSUMER.DURABLE.CREATE.{stream}.{consumer}",
            f"{api}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
            f"$JS.ACK.{stream}.{consumer}.>",
        ]
    return {
        "publish": {"allow": publish},
        "subscribe": {
            "allow": [
                subjects.my_events(),
                *(subjects.role_events(role) for role in roles),
                *(subjects.all_of_role(role) for role in roles),
                *([f"{prefix}.pub.{peer}.>" for peer in identity.peers] or [f"{prefix}.pub.>"]),
                f"{subjects.inbox_prefix()}.>",
            ]
        },
        "allow_responses": True,
    }


def authorization_block(identities: Iterable[NatsIdentity]) -> str:
    """The text of a nats-server ``authorization { users = [...] }`` block."""
    lines = ["authorization {", "  users = ["]
    seen: set[str] = set()
    for identity in identities:
        if identity.gaplic in seen:
            raise ValueError(f"GAplic {identity.gaplic!r} appears twice")
        seen.add(identity.gaplic)
        entry: dict[str, object] = {}
        if identity.nkey:
            entry["nkey"] = identity.nkey
        else:
            entry["user"] = identity.user or identity.gaplic
            entry["password"] = identity.password or "CHANGE-ME"
        entry["permissions"] = permissions_for(identity)
        lines.append(f"    # GAplic {identity.gaplic}")
        lines.extend(f"    # {note}" for note in identity.notes)
        text = json.dumps(entry, indent=2)
        lines.extend("    " + line for line in text.splitlines())
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"
