"""``GStdin``: the lines of standard input (or another pipe, tty or file) as events.

ginsfsm's GStdin wrapped ``sys.stdin`` in a GSock and broadcast ``EV_RX_DATA`` for each
complete line.  This one reads on the GAplic's asyncio loop without blocking it: a pipe,
a socket or a tty through ``loop.connect_read_pipe``; a regular file (``prog < file``),
which no poller can watch, one chunk per loop iteration.  The end of the input is an
event too.

Configuration:

===============  =====  =========  ============================================================
name             type   default    description
===============  =====  =========  ============================================================
eol              str    '\\n'      The end of a line (not included in the data).
subscriber       None   None       Gets every output event; None: the parent.
file             None   None       What to read: None is ``sys.stdin``; else a file object
                                   or a file descriptor (int).  It is not closed: GStdin reads
                                   through a duplicate of its descriptor.
encoding         str    'utf-8'    How the bytes become text (undecodable bytes: U+FFFD).
max_line_size    int    65536      A longer line is delivered in pieces of this many
                                   characters (``partial=True`` on all but the last).
===============  =====  =========  ============================================================

Input events:

* ``EV_RX_DATA`` (bottom input) — ``data``: text (str) or bytes read.  The reader sends
  it to the GStdin itself; a program may send it too (a test, a pipe of its own).
* ``EV_EOF`` (bottom input) — the input ended: what is left of an unfinished line is
  delivered, then ``EV_EOF`` is broadcast.

Output events (to the subscriber):

* ``EV_RX_DATA`` — ``data``: one line, without ``eol``; ``partial``: True for a piece of
  a line longer than ``max_line_size`` (more of it follows).
* ``EV_EOF`` — the input ended (the writer closed the pipe, the end of the file, Ctrl-D
  on a terminal); ``reason``: ``eof`` or ``error`` (a read error, logged).  After it the
  GStdin is in ``ST_CLOSED``: it reads nothing more, and drops what it is sent.

Theory of operation
-------------------
The GStdin is the asyncio ``Protocol`` of its pipe (as GSock is of its connection).  It
reads a duplicate of the descriptor, so closing the transport at the end never closes
the program's own standard input; the duplicate shares the open file description, so the
non-blocking mode asyncio sets is shared too, and is put back as it was when the GStdin
is destroyed (a terminal left non-blocking breaks the shell that started the program).
Reading starts when the GAplic runs on its loop; the GAplic's shutdown stops it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import stat
import sys
from typing import Any, Final, cast

from fsmio.core.errors import GObjError
from fsmio.core.event import Event
from fsmio.core.gconfig import positive_int
from fsmio.core.gobj import GObj

__all__ = ["GSTDIN_FSM", "GSTDIN_GCONFIG", "GStdin"]

_LOG = logging.getLogger("fsmio")

#: Bytes read from a regular file per loop iteration (a pipe gives what it has).
_FILE_CHUNK: Final = 65536


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
def _eol(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise ValueError("eol must be a non-empty str")
    return value


def _file(value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    if callable(getattr(value, "fileno", None)):
        return value
    raise ValueError("expected None (sys.stdin), a file object or a file descriptor")


def _encoding(value: Any) -> Any:
    codecs.lookup(value)  # raises LookupError for an unknown one
    return value


GSTDIN_GCONFIG: Final[dict[str, list[Any]]] = {
    "eol": [str, "\n", 0, _eol, "The end of a line (not included in the data)."],
    "subscriber": [None, None, 0, None, "Gets every output event; None means the parent."],
    "file": [None, None, 0, _file, "What to read: None (sys.stdin), a file or a descriptor."],
    "encoding": [str, "utf-8", 0, _encoding, "How the bytes read become text."],
    "max_line_size": [
        int,
        65536,
        0,
        positive_int,
        "A longer line is delivered in pieces of this size (partial=True).",
    ],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_rx_data(self: GStdin, event: Event) -> None:
    data = event.kw.get("data")
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = self._decoder.decode(bytes(data))
    elif not isinstance(data, str):
        raise TypeError(f"{self!r}: EV_RX_DATA data must be str or bytes, not {data!r}")
    self._deliver_lines(data)


def ac_eof(self: GStdin, event: Event) -> None:
    self._deliver_lines(self._decoder.decode(b"", final=True))
    if self._pending:
        line, self._pending = self._pending, ""
        self.broadcast_event("EV_RX_DATA", data=line, partial=False)
    self._close_reader()
    self.broadcast_event("EV_EOF", reason=event.kw.get("reason", "eof"))


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GSTDIN_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_RX_DATA: bottom input: top output",
        "EV_EOF: bottom input: top output",
    ),
    "state_list": ("ST_IDLE", "ST_CLOSED"),
    "machine": {
        "ST_IDLE": (
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_EOF", ac_eof, "ST_CLOSED"),
        ),
        # After the end: what a program still sends it is dropped, quietly.
        "ST_CLOSED": (
            ("EV_RX_DATA", None, None),
            ("EV_EOF", None, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class GStdin(GObj, asyncio.Protocol):
    """Lines of standard input as ``EV_RX_DATA`` events (see the module documentation)."""

    def __init__(self) -> None:
        GObj.__init__(self, GSTDIN_FSM, GSTDIN_GCONFIG)
        self._pending = ""
        self._decoder: codecs.IncrementalDecoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._fd = -1  # our duplicate of the descriptor read
        self._source_fd = -1  # the descriptor given (or sys.stdin's)
        self._was_blocking: bool | None = None
        self._transport: asyncio.ReadTransport | None = None
        self._file_handle: asyncio.Handle | None = None
        self._reading = False
        self._connecting = False  # connect_read_pipe under way: the pipe owns our fd

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        """Subscribe the subscriber (None: the parent) and start reading when the GAplic
        runs (at once if it already does)."""
        gaplic = self.gaplic
        if gaplic is None:
            raise GObjError(f"{self!r}: a GStdin needs a GAplic (create it through one)")
        config = self.config
        self._decoder = codecs.getincrementaldecoder(config.encoding)("replace")
        subscriber = config.subscriber
        if subscriber is not None or self.parent is not None:
            self.subscribe_event(None, subscriber)
        source = config.file if config.file is not None else sys.stdin
        try:
            fd = source if isinstance(source, int) else source.fileno()
            self._fd = os.dup(fd)
        except (OSError, ValueError, AttributeError) as exc:
            raise GObjError(f"{self!r}: cannot read {source!r}: {exc}") from None
        self._source_fd = fd
        self._was_blocking = os.get_blocking(fd)
        gaplic.add_shutdown_callback(self._close_reader)
        self._reading = True
        if gaplic._aio_loop is None:
            gaplic.add_callback(self._start_reading)
        else:
            self._start_reading()

    def go_out(self) -> None:
        """Destroyed: stop reading, close the duplicate, restore the blocking mode."""
        self.gaplic.remove_shutdown_callback(self._close_reader)
        self._close_reader()

    def _restore_blocking(self) -> None:
        """Put the input's blocking mode back as it was (the non-blocking mode asyncio set
        on our duplicate is the program's too: they share the open file description)."""
        was, self._was_blocking = self._was_blocking, None
        if was is not None and self._source_fd >= 0:
            with contextlib.suppress(OSError):
                os.set_blocking(self._source_fd, was)

    # ------------------------------------------------------------------------------------
    #   Reading
    # ------------------------------------------------------------------------------------
    def _start_reading(self) -> None:
        if self._destroyed or not self._reading or self._fd < 0:
            return
        loop = self.gaplic.loop
        mode = os.fstat(self._fd).st_mode
        if stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(self._fd)):
            # No poller watches a regular file (nor /dev/null): read it chunk by chunk.
            self._file_handle = loop.call_soon(self._read_file_chunk)
            return
        # The pipe object owns our duplicate from here: the transport closes it.
        pipe = open(self._fd, "rb", buffering=0)  # noqa: SIM115
        self._connecting = True
        task = loop.create_task(loop.connect_read_pipe(lambda: self, pipe))
        task.add_done_callback(lambda t: self._pipe_connected(t, pipe))

    def _pipe_connected(self, task: asyncio.Task[Any], pipe: Any) -> None:
        self._connecting = False
        if not task.cancelled() and task.exception() is None:
            if self._transport is None:  # closed while connecting: connection_made saw it
                pipe.close()
            return
        pipe.close()
        self._fd = -1
        if task.cancelled() or self._destroyed or not self._reading:
            return
        (self.logger or _LOG).warning("%r: cannot read its input: %r", self, task.exception())
        self._guarded("EV_EOF", reason="error")

    def _read_file_chunk(self) -> None:
        self._file_handle = None
        if self._destroyed or not self._reading or self._fd < 0:
            return
        try:
            data = os.read(self._fd, _FILE_CHUNK)
        except BlockingIOError:
            data = None
        except OSError as exc:
            (self.logger or _LOG).warning("%r: read error: %r", self, exc)
            self._guarded("EV_EOF", reason="error")
            return
        if data == b"":
            self._guarded("EV_EOF", reason="eof")
            return
        if data:
            self._guarded("EV_RX_DATA", data=data)
        if self._reading and not self._destroyed:
            self._file_handle = self.gaplic.loop.call_soon(self._read_file_chunk)

    def _close_reader(self) -> None:
        self._reading = False
        self._restore_blocking()
        if self._file_handle is not None:
            self._file_handle.cancel()
            self._file_handle = None
        transport = self._transport
        fd, self._fd = self._fd, -1
        if transport is not None:
            self._transport = None
            transport.close()  # closes our duplicate, never the program's descriptor
        elif fd >= 0 and not self._connecting:
            with contextlib.suppress(OSError):
                os.close(fd)

    # ------------------------------------------------------------------------------------
    #   asyncio Protocol
    # ------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._destroyed or not self._reading:
            transport.close()
            return
        self._transport = cast(asyncio.ReadTransport, transport)

    def data_received(self, data: bytes) -> None:
        self._guarded("EV_RX_DATA", data=data)

    def eof_received(self) -> bool | None:
        self._guarded("EV_EOF", reason="eof")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return  # we closed it
        self._transport = None
        self._fd = -1
        if exc is not None and self._state == "ST_IDLE" and not self._destroyed:
            (self.logger or _LOG).warning("%r: read error: %r", self, exc)
            self._guarded("EV_EOF", reason="error")

    # ------------------------------------------------------------------------------------
    #   Internals
    # ------------------------------------------------------------------------------------
    def _guarded(self, event: str, **kw: Any) -> None:
        """Send ``event`` to ourselves from a loop callback: an exception raised by a
        subscriber goes to the GAplic, never into asyncio."""
        if self._destroyed or self._state != "ST_IDLE":
            return
        try:
            self.send_event(self, event, **kw)
        except Exception as exc:
            self.gaplic.handle_exception(exc, f"{self!r} (reading its input)")

    def _deliver_lines(self, text: str) -> None:
        """Broadcast every complete line of what was read; keep the rest (at most
        ``max_line_size`` characters and a piece of ``eol``: longer goes out in pieces)."""
        eol = self.config.eol
        limit = self.config.max_line_size
        pending = self._pending + text
        start = 0
        while not self._destroyed:
            # An eol starting within limit characters ends a line that is not too long.
            index = pending.find(eol, start, start + limit + len(eol))
            if index >= 0:
                line, start = pending[start:index], index + len(eol)
                self.broadcast_event("EV_RX_DATA", data=line, partial=False)
            elif len(pending) - start >= limit + len(eol):
                piece, start = pending[start : start + limit], start + limit
                self.broadcast_event("EV_RX_DATA", data=piece, partial=True)
            else:
                break
        self._pending = pending[start:]
