"""``GSSLSock``: ginsfsm's TLS socket gclass, kept for the programs that name it.

In fsmio, GSock itself does TLS, client and server side, whenever ``ssl_options`` is
given (a dict of options or an ``ssl.SSLContext``; see ``fsmio.gobjs.tls``), and a
GServerSock with ``ssl_options`` makes TLS connections of its accepted GSocks.  GSSLSock
is a GSock that insists on TLS: the same configuration, events and methods as GSock
(see ``fsmio.gobjs.c_sock``), and an empty ``ssl_options`` is a ``GConfigValidateError``
at ``create_gobj`` saying so — it would otherwise be plain TCP under a TLS name.

Configuration, input and output events: GSock's.
"""

from __future__ import annotations

from fsmio.core.errors import GConfigValidateError
from fsmio.gobjs.c_sock import GSock

__all__ = ["GSSLSock"]


class GSSLSock(GSock):
    """A GSock that requires ``ssl_options`` (GSock does TLS itself: prefer it)."""

    __slots__ = ()

    def start_up(self) -> None:
        """Refuse an empty ``ssl_options``, then start up as a GSock."""
        if not self.config.ssl_options:
            raise GConfigValidateError(
                f"{self!r}: GSSLSock needs ssl_options (a dict such as "
                "{'cafile': ...} for a client, or an ssl.SSLContext); in fsmio any GSock "
                "does TLS when given ssl_options, and a GServerSock with ssl_options "
                "accepts TLS connections: use GSock"
            )
        super().start_up()
