"""The output queue of a GSock: pure bookkeeping, no sockets and no event loop.

``OutBuf`` keeps the bytes a GSock was asked to send and has not yet handed to its
transport:

* in memory (a deque of chunks) while the memory part stays within ``overflow`` bytes
  (the GSock's ``outbuf_overflow``);
* beyond that, in an *unlinked* temporary file (``tempfile.TemporaryFile``: the name is
  gone from the directory as soon as it is created, so nothing is left behind even after
  SIGKILL).  Once the file holds data, every new write goes to the file too, so the order
  of the bytes is kept; when the file has been read to its end it is truncated and writes
  go to memory again.  The file is closed by ``close()``.

``pop(n)`` takes up to ``n`` bytes off the front (the GSock uses ``send_bytes``).

``FlowQueue`` adds what the GSock needs to drive a transport that may push back (an
asyncio transport calls ``pause_writing``/``resume_writing``):

* ``flush(sink)`` hands chunks of at most ``send_bytes`` to ``sink`` while the sink is
  not paused; it returns whether everything was handed over.
* Reading from the peer should pause when ``pending`` is above ``high_water`` and resume
  when it falls to ``low_water`` or below (``reading_should_pause`` /
  ``reading_should_resume`` report the edges once each).
* ``max_size`` is a hard limit: a write that would take ``pending`` beyond it is refused
  (``write`` raises ``OutBufOverflow``); the GSock then drops the connection with the
  reason ``tx_overflow``.
* ``drained_after_wait``: true once after a ``flush`` that could *not* hand everything
  over at once has finally drained — the GSock's EV_TRANSMIT_READY.
* ``close_when_flushed``: a one-shot request; ``flush`` reports ``should_close`` once the
  queue is empty.

Everything is plain Python so it can be tested with hypothesis against a bytes model and
with a fake sink.

Memory (an idle connection is the common case: ten thousand of them must stay cheap):

* A ``FlowQueue`` that holds nothing has no ``OutBuf`` of its own: ``buf`` is a shared,
  always-empty one (``pending`` 0; writing to it raises).  The first ``write`` gives the
  queue its own ``OutBuf``; once everything has been handed over (and no spill file is
  kept open) the queue lets it go and points at the shared empty one again.  An OutBuf
  makes its deque (624 bytes) on its first in-memory write.
* The limits (``overflow``, ``high_water``, ``low_water``, ``max_size``, ``spill_dir``)
  live in one ``FlowLimits`` shared by every queue made with the same values (the
  connections of one server), read through properties; ``send_bytes`` and the flags,
  read on every message, stay slots of the queue.
"""

from __future__ import annotations

import collections
import tempfile
from collections.abc import Callable
from typing import IO, Final

__all__ = [
    "EMPTY_OUTBUF",
    "FlowLimits",
    "FlowQueue",
    "OutBuf",
    "OutBufOverflow",
    "as_bytes",
    "flow_limits",
]

# How much of the spill file is read at once when a chunk is popped from it.
_FILE_READ_MAX: Final = 256 * 1024


class OutBufOverflow(Exception):
    """A write would take the queue beyond its hard limit (``max_size``)."""


def as_bytes(data: object) -> bytes:
    """``data`` as bytes: bytes-like objects as they are, ``str`` encoded as latin-1
    (ginsfsm's rule; a character beyond latin-1 raises ``UnicodeEncodeError``).

    Anything else raises ``TypeError``.
    """
    if type(data) is bytes:
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("latin-1")
    raise TypeError(f"data must be bytes (or a latin-1 str), not {type(data).__name__}")


class OutBuf:
    """Bytes in FIFO order: memory up to ``overflow`` bytes, then an unlinked temp file."""

    __slots__ = (
        "_chunks",
        "_file",
        "_file_read",
        "_file_write",
        "_head_offset",
        "mem_size",
        "overflow",
        "spill_dir",
        "spill_size",
        "spills",
    )

    def __init__(self, overflow: int = 1048576, spill_dir: str | None = None) -> None:
        self.overflow = overflow
        self.spill_dir = spill_dir
        # Made on the first write that stays in memory (an idle connection needs none).
        self._chunks: collections.deque[bytes] | None = None
        self._head_offset = 0  # bytes of _chunks[0] already popped
        self.mem_size = 0
        self._file: IO[bytes] | None = None
        self._file_read = 0
        self._file_write = 0
        self.spill_size = 0
        self.spills = 0  # how many times a spill file was created (stats, tests)

    def __len__(self) -> int:
        return self.mem_size + self.spill_size

    @property
    def pending(self) -> int:
        """Bytes waiting (memory and file)."""
        return self.mem_size + self.spill_size

    @property
    def spilled(self) -> bool:
        """Whether the spill file exists (it may be empty)."""
        return self._file is not None

    def write(self, data: bytes) -> None:
        """Append ``data`` (bytes) at the end."""
        if not data:
            return
        if self.spill_size == 0 and self.mem_size + len(data) <= self.overflow:
            chunks = self._chunks
            if chunks is None:
                chunks = self._chunks = collections.deque()
            chunks.append(data)
            self.mem_size += len(data)
            return
        f = self._file
        if f is None:
            f = self._file = tempfile.TemporaryFile("w+b", dir=self.spill_dir)  # noqa: SIM115
            self.spills += 1
        f.seek(self._file_write)
        f.write(data)
        self._file_write += len(data)
        self.spill_size += len(data)

    def pop(self, n: int) -> bytes:
        """Remove and return up to ``n`` (> 0) bytes from the front (b'' when empty)."""
        if self.mem_size:
            chunks = self._chunks
            assert chunks is not None
            head = chunks[0]
            offset = self._head_offset
            if offset == 0 and len(head) <= n and (len(head) == n or len(chunks) == 1):
                # The common case: exactly one whole chunk, no copy.
                chunks.popleft()
                self.mem_size -= len(head)
                return head
            parts: list[bytes] = []
            taken = 0
            while chunks and taken < n:
                head = chunks[0]
                offset = self._head_offset
                available = len(head) - offset
                want = n - taken
                if available <= want:
                    parts.append(head[offset:] if offset else head)
                    chunks.popleft()
                    self._head_offset = 0
                    taken += available
                else:
                    parts.append(head[offset : offset + want])
                    self._head_offset = offset + want
                    taken += want
            self.mem_size -= taken
            return b"".join(parts)
        if self.spill_size:
            f = self._file
            assert f is not None
            f.seek(self._file_read)
            data = f.read(min(n, self.spill_size, _FILE_READ_MAX))
            self._file_read += len(data)
            self.spill_size -= len(data)
            if self.spill_size == 0:
                # Drained: start the file again from zero (keep it, it may be needed again).
                f.seek(0)
                f.truncate()
                self._file_read = self._file_write = 0
            return data
        return b""

    def clear(self) -> None:
        """Forget every byte (the spill file is truncated, not closed)."""
        if self._chunks is not None:
            self._chunks.clear()
        self._head_offset = 0
        self.mem_size = 0
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
        self._file_read = self._file_write = 0
        self.spill_size = 0

    def close(self) -> None:
        """Forget every byte and close (so delete) the spill file.  Idempotent."""
        self.clear()
        f = self._file
        self._file = None
        if f is not None:
            f.close()

    def spill_fileno(self) -> int | None:
        """The spill file's descriptor (tests check it is unlinked), or None."""
        return self._file.fileno() if self._file is not None else None


class _SharedEmptyOutBuf(OutBuf):
    """The one empty ``OutBuf`` every idle ``FlowQueue`` points at: it must stay empty."""

    __slots__ = ()

    def write(self, data: bytes) -> None:
        if data:
            raise RuntimeError("the shared empty OutBuf cannot be written (FlowQueue.write)")


#: ``FlowQueue.buf`` while the queue holds nothing (see the module doc).
EMPTY_OUTBUF: Final[OutBuf] = _SharedEmptyOutBuf(0)


class FlowLimits:
    """The limits of a ``FlowQueue``: read-only, shared by the queues that have the same."""

    __slots__ = ("high_water", "low_water", "max_size", "overflow", "spill_dir")

    def __init__(
        self, overflow: int, high_water: int, low_water: int, max_size: int, spill_dir: str | None
    ) -> None:
        self.overflow = overflow
        self.high_water = high_water
        self.low_water = low_water
        self.max_size = max_size
        self.spill_dir = spill_dir


# Limits by value: every connection of a server asks for the same ones.  Bounded: a
# program making queues with ever-new limits only starts sharing over again.
_limits_cache: dict[tuple[int, int, int, int, str | None], FlowLimits] = {}
_LIMITS_CACHE_MAX: Final = 256


def flow_limits(
    overflow: int, high_water: int, low_water: int, max_size: int, spill_dir: str | None
) -> FlowLimits:
    """The shared ``FlowLimits`` with these values."""
    key = (overflow, high_water, low_water, max_size, spill_dir)
    limits = _limits_cache.get(key)
    if limits is None:
        if len(_limits_cache) >= _LIMITS_CACHE_MAX:
            _limits_cache.clear()
        limits = _limits_cache[key] = FlowLimits(*key)
    return limits


class FlowQueue:
    """An ``OutBuf`` plus the flow-control state of a GSock's output (see the module doc)."""

    __slots__ = (
        "_limits",
        "_reading_paused",
        "_waited",
        "buf",
        "close_when_flushed",
        "send_bytes",
        "sink_paused",
    )

    def __init__(
        self,
        send_bytes: int = 18000,
        overflow: int = 1048576,
        high_water: int = 16 * 1048576,
        low_water: int | None = None,
        max_size: int = 0,
        spill_dir: str | None = None,
    ) -> None:
        if send_bytes <= 0:
            raise ValueError(f"send_bytes must be > 0, not {send_bytes}")
        low = high_water // 4 if low_water is None else low_water
        self._limits = flow_limits(overflow, high_water, low, max_size, spill_dir)
        self.buf = EMPTY_OUTBUF  # an OutBuf of its own from the first write
        self.send_bytes = send_bytes
        self.sink_paused = False
        self.close_when_flushed = False
        self._reading_paused = False
        self._waited = False

    @property
    def pending(self) -> int:
        return self.buf.pending

    @property
    def overflow(self) -> int:
        return self._limits.overflow

    @property
    def high_water(self) -> int:
        return self._limits.high_water

    @property
    def low_water(self) -> int:
        return self._limits.low_water

    @property
    def max_size(self) -> int:
        """The hard limit of ``pending`` (0: none)."""
        return self._limits.max_size

    @property
    def spill_dir(self) -> str | None:
        return self._limits.spill_dir

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    def write(self, data: bytes) -> int:
        """Queue ``data``; return its length.  ``OutBufOverflow`` past ``max_size``."""
        n = len(data)
        buf = self.buf
        max_size = self._limits.max_size
        if max_size and buf.pending + n > max_size:
            raise OutBufOverflow(f"{buf.pending} bytes pending + {n} > the hard limit {max_size}")
        if buf is EMPTY_OUTBUF:
            if not n:
                return 0
            limits = self._limits
            buf = self.buf = OutBuf(limits.overflow, limits.spill_dir)
        buf.write(data)
        return n

    def _release_if_empty(self) -> None:
        """Nothing pending: give the OutBuf (and its deque) back, unless it keeps a spill
        file open to be used again."""
        buf = self.buf
        if buf is not EMPTY_OUTBUF and not buf.pending and buf._file is None:
            self.buf = EMPTY_OUTBUF

    def flush(self, sink: Callable[[bytes], object]) -> bool:
        """Hand chunks to ``sink`` while it is not paused; return whether all were handed.

        ``sink`` may set ``sink_paused`` (through ``pause()``) while it runs, as an asyncio
        transport calls ``pause_writing`` from inside ``write``.
        """
        send_bytes = self.send_bytes
        buf = self.buf
        while buf.pending and not self.sink_paused:
            sink(buf.pop(send_bytes))
            buf = self.buf  # the sink may have reset the queue (then written to it again)
        if buf.pending:
            self._waited = True
            return False
        if buf is not EMPTY_OUTBUF and buf._file is None:
            self.buf = EMPTY_OUTBUF  # drained: let the OutBuf and its deque go
        return True

    def pause(self) -> None:
        """The sink is full (asyncio: ``pause_writing``)."""
        self.sink_paused = True

    def resume(self) -> None:
        """The sink has room again (asyncio: ``resume_writing``); call ``flush`` next."""
        self.sink_paused = False
        self._waited = True

    def drained_after_wait(self) -> bool:
        """True once when everything was handed over after having had to wait."""
        if self._waited and not self.buf.pending and not self.sink_paused:
            self._waited = False
            return True
        return False

    def reading_should_pause(self) -> bool:
        """True once when ``pending`` went above ``high_water`` (pause the peer)."""
        if not self._reading_paused and self.buf.pending > self._limits.high_water:
            self._reading_paused = True
            return True
        return False

    def reading_should_resume(self) -> bool:
        """True once when ``pending`` fell to ``low_water`` after a pause."""
        if self._reading_paused and self.buf.pending <= self._limits.low_water:
            self._reading_paused = False
            return True
        return False

    def should_close(self) -> bool:
        """True (once) when ``close_when_flushed`` is set and nothing is pending."""
        if self.close_when_flushed and not self.buf.pending:
            self.close_when_flushed = False
            return True
        return False

    def reset(self) -> None:
        """Forget every byte and every flag (a new connection starts from here)."""
        if self.buf is not EMPTY_OUTBUF:  # (called several times per connection)
            self.buf.clear()
            self._release_if_empty()
        self.sink_paused = False
        self.close_when_flushed = False
        self._reading_paused = False
        self._waited = False

    def close(self) -> None:
        """Forget every byte and close the spill file."""
        self.reset()
        if self.buf is not EMPTY_OUTBUF:
            self.buf.close()
            self._release_if_empty()
