"""The output queue core: a bytes model, spill files, flow-control edges, a fake sink."""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fsmio.gobjs import outbuf
from fsmio.gobjs.outbuf import (
    EMPTY_OUTBUF,
    FlowQueue,
    OutBuf,
    OutBufOverflow,
    as_bytes,
    flow_limits,
)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("w"), st.binary(max_size=300)),
        st.tuples(st.just("r"), st.integers(min_value=1, max_value=400)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops=ops, overflow=st.integers(min_value=0, max_value=500))
def test_outbuf_matches_a_bytes_model(ops: list[tuple[str, object]], overflow: int) -> None:
    buf = OutBuf(overflow)
    model = bytearray()
    try:
        for op, arg in ops:
            if op == "w":
                assert isinstance(arg, bytes)
                buf.write(arg)
                model += arg
            else:
                assert isinstance(arg, int)
                got = buf.pop(arg)
                assert got == bytes(model[: len(got)])
                # The memory part gives what it has up to n; the file part may stop short of n
                # only at the end of the memory part; never nothing while bytes are pending.
                assert (len(got) > 0) == (len(model) > 0)
                assert len(got) <= arg
                del model[: len(got)]
            assert buf.pending == len(model)
            assert buf.mem_size <= overflow
        rest = b""
        while buf.pending:
            rest += buf.pop(7)
        assert rest == bytes(model)
    finally:
        buf.close()


def test_spill_file_is_unlinked_and_closed(tmp_path: os.PathLike[str]) -> None:
    buf = OutBuf(overflow=10, spill_dir=str(tmp_path))
    buf.write(b"a" * 8)
    assert not buf.spilled
    buf.write(b"b" * 100)
    assert buf.spilled and buf.spill_size == 100 and buf.mem_size == 8
    fd = buf.spill_fileno()
    assert fd is not None
    assert os.fstat(fd).st_nlink == 0  # no name in any directory
    assert os.listdir(tmp_path) == []
    assert buf.pop(1000) == b"a" * 8
    assert buf.pop(1000) == b"b" * 100
    buf.close()
    buf.close()  # idempotent
    assert buf.spill_fileno() is None
    with pytest.raises(OSError):
        os.fstat(fd)


def test_order_kept_across_memory_file_memory() -> None:
    buf = OutBuf(overflow=4)
    for part in (b"12", b"345", b"67", b"8"):
        buf.write(part)
    assert (buf.mem_size, buf.spill_size) == (2, 6)
    assert buf.pop(3) == b"12"
    assert buf.pop(100) == b"345678"
    buf.write(b"9")  # the drained file is truncated; memory again
    assert (buf.mem_size, buf.spill_size) == (1, 0)
    assert buf.pop(5) == b"9" and buf.pop(5) == b""
    buf.close()


def test_as_bytes() -> None:
    assert as_bytes(b"x") == b"x"
    assert as_bytes(bytearray(b"x")) == b"x"
    assert as_bytes(memoryview(b"xy")) == b"xy"
    assert as_bytes("é") == b"\xe9"
    with pytest.raises(UnicodeEncodeError):
        as_bytes("€")
    with pytest.raises(TypeError):
        as_bytes(12)


class FakeTransport:
    """An asyncio-like transport: buffers, and pauses its producer above ``high``."""

    def __init__(self, queue: FlowQueue, high: int) -> None:
        self.queue = queue
        self.high = high
        self.buffer = bytearray()
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self.buffer += data
        if len(self.buffer) > self.high and not self.queue.sink_paused:
            self.queue.pause()

    def drain(self, n: int) -> bytes:
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        if self.queue.sink_paused and len(self.buffer) <= self.high // 4:
            self.queue.resume()
        return out


def test_flush_chunks_by_send_bytes_and_stops_when_paused() -> None:
    q = FlowQueue(send_bytes=10, overflow=25, high_water=40, low_water=5)
    t = FakeTransport(q, high=15)
    q.write(b"x" * 100)
    assert q.buf.spilled
    assert q.reading_should_pause() and not q.reading_should_pause()
    assert q.flush(t.write) is False
    assert t.writes == [10, 10] and q.pending == 80
    assert not q.drained_after_wait()
    received = t.drain(100)
    assert q.flush(t.write) is False
    while q.pending or t.buffer:
        received += t.drain(7)
        q.flush(t.write)
    assert received == b"x" * 100
    assert max(t.writes) == 10
    assert q.reading_should_resume() and not q.reading_should_resume()
    assert q.drained_after_wait() and not q.drained_after_wait()
    q.close()


def test_immediate_flush_is_not_a_transmit_ready() -> None:
    q = FlowQueue(send_bytes=10)
    t = FakeTransport(q, high=1000)
    q.write(b"abc")
    assert q.flush(t.write) is True
    assert not q.drained_after_wait()
    q.close()


def test_hard_limit_and_close_when_flushed() -> None:
    q = FlowQueue(send_bytes=4, max_size=10)
    q.write(b"0123456789")
    with pytest.raises(OutBufOverflow):
        q.write(b"x")
    q.close_when_flushed = True
    assert not q.should_close()
    sink: list[bytes] = []
    assert q.flush(sink.append)
    assert b"".join(sink) == b"0123456789"
    assert q.should_close() and not q.should_close()
    q.reset()
    assert q.pending == 0
    q.close()


def test_bad_send_bytes() -> None:
    with pytest.raises(ValueError, match="send_bytes"):
        FlowQueue(send_bytes=0)


@settings(max_examples=100, deadline=None)
@given(
    writes=st.lists(st.binary(min_size=1, max_size=200), max_size=30),
    drains=st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=30),
    send_bytes=st.integers(min_value=1, max_value=64),
    overflow=st.integers(min_value=0, max_value=300),
)
def test_flow_queue_delivers_everything_in_order(
    writes: list[bytes], drains: list[int], send_bytes: int, overflow: int
) -> None:
    q = FlowQueue(send_bytes=send_bytes, overflow=overflow)
    t = FakeTransport(q, high=50)
    received = bytearray()
    try:
        for i, data in enumerate(writes):
            q.write(data)
            q.flush(t.write)
            received += t.drain(drains[i % len(drains)])
            q.flush(t.write)
        for _ in range(100_000):
            if not (q.pending or t.buffer):
                break
            received += t.drain(drains[0])
            q.flush(t.write)
        assert bytes(received) == b"".join(writes)
        assert all(n <= send_bytes for n in t.writes)
    finally:
        q.close()


# ----------------------------------------------------------------------------------------
#   Memory: an idle queue owns no OutBuf, limits are shared
# ----------------------------------------------------------------------------------------
def _empty_outbuf_untouched() -> bool:
    b = EMPTY_OUTBUF
    return (
        b.pending == 0
        and b.mem_size == 0
        and b.spill_size == 0
        and b._chunks is None
        and b._file is None
        and b._head_offset == 0
    )


def test_idle_queue_owns_no_outbuf_and_shares_its_limits() -> None:
    a = FlowQueue(send_bytes=10, overflow=100, high_water=400, max_size=1000)
    b = FlowQueue(send_bytes=20, overflow=100, high_water=400, max_size=1000)
    assert a.buf is EMPTY_OUTBUF and b.buf is EMPTY_OUTBUF
    assert a._limits is b._limits  # one FlowLimits for the same values
    assert (a.overflow, a.high_water, a.low_water, a.max_size, a.spill_dir) == (
        100,
        400,
        100,
        1000,
        None,
    )
    assert (a.send_bytes, b.send_bytes) == (10, 20)
    assert FlowQueue(low_water=7)._limits is not a._limits
    assert a.write(b"") == 0 and a.buf is EMPTY_OUTBUF  # nothing written, nothing made
    assert a.flush(lambda data: None) and not a.drained_after_wait()
    a.reset()
    a.close()
    assert a.buf is EMPTY_OUTBUF and _empty_outbuf_untouched()


def test_first_write_makes_an_outbuf_and_a_drain_lets_it_go() -> None:
    q = FlowQueue(send_bytes=4)
    q.write(b"0123456")
    own = q.buf
    assert own is not EMPTY_OUTBUF and q.pending == 7
    sink: list[bytes] = []
    q.pause()
    assert q.flush(sink.append) is False and q.buf is own  # paused: kept
    q.resume()
    assert q.flush(sink.append) is True
    assert b"".join(sink) == b"0123456" and q.buf is EMPTY_OUTBUF
    assert q.drained_after_wait()
    q.write(b"x")
    assert q.buf is not EMPTY_OUTBUF
    q.reset()
    assert q.buf is EMPTY_OUTBUF and q.pending == 0
    q.write(b"y")
    q.close()
    assert q.buf is EMPTY_OUTBUF and _empty_outbuf_untouched()


def test_a_spill_file_keeps_the_outbuf_until_close(tmp_path: os.PathLike[str]) -> None:
    q = FlowQueue(send_bytes=1000, overflow=4, spill_dir=str(tmp_path))
    q.write(b"abc")
    q.write(b"defgh")  # beyond overflow: spilled
    own = q.buf
    assert own.spilled
    sink: list[bytes] = []
    assert q.flush(sink.append) and b"".join(sink) == b"abcdefgh"
    assert q.buf is own  # the (truncated) file is kept for the next burst
    q.reset()
    assert q.buf is own and own.spilled
    q.close()
    assert q.buf is EMPTY_OUTBUF and own.spill_fileno() is None
    assert os.listdir(tmp_path) == []


def test_the_shared_empty_outbuf_cannot_be_written() -> None:
    with pytest.raises(RuntimeError, match="shared empty"):
        EMPTY_OUTBUF.write(b"x")
    EMPTY_OUTBUF.write(b"")  # nothing: allowed
    assert EMPTY_OUTBUF.pop(10) == b"" and _empty_outbuf_untouched()


def test_hard_limit_on_an_idle_queue() -> None:
    q = FlowQueue(max_size=3)
    with pytest.raises(OutBufOverflow):
        q.write(b"abcd")
    assert q.buf is EMPTY_OUTBUF  # a refused write makes nothing
    assert q.write(b"abc") == 3
    q.close()


def test_limits_cache_is_bounded() -> None:
    for i in range(outbuf._LIMITS_CACHE_MAX + 10):
        flow_limits(i, 1, 0, 0, None)
    assert len(outbuf._limits_cache) <= outbuf._LIMITS_CACHE_MAX
    assert flow_limits(5, 6, 7, 8, "d") is flow_limits(5, 6, 7, 8, "d")


def test_an_idle_queue_is_small() -> None:
    """The per-connection figure of issue #4: an idle queue is one 7-slot object (88
    bytes on 64-bit CPython); it was a FlowQueue, an OutBuf and an int (248 bytes)."""
    FlowQueue()  # the shared limits exist before counting
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        queues = [FlowQueue() for _ in range(1000)]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    list_cost = sys.getsizeof(queues)
    per_queue = (grown - list_cost) / len(queues)
    assert per_queue <= 8 * len(FlowQueue.__slots__) + 40, per_queue


class FlowQueueMachine(RuleBasedStateMachine):
    """Any mix of writes, flushes into a sink that pushes back, drains, resets and closes:
    every byte written since the last reset arrives once and in order, and the queue
    holds an OutBuf of its own exactly when it has to."""

    def __init__(self) -> None:
        super().__init__()
        self.q: FlowQueue | None = None
        self.expected = bytearray()  # written since the last reset, not yet at the sink
        self.sink_buffer = bytearray()  # handed to the sink, not yet drained
        self.received = bytearray()
        self.sink_high = 30

    @initialize(
        send_bytes=st.integers(min_value=1, max_value=40),
        overflow=st.integers(min_value=0, max_value=120),
        max_size=st.sampled_from([0, 150, 400]),
    )
    def make(self, send_bytes: int, overflow: int, max_size: int) -> None:
        self.q = FlowQueue(send_bytes=send_bytes, overflow=overflow, max_size=max_size)

    def _sink(self, data: bytes) -> None:
        assert self.q is not None
        assert 0 < len(data) <= self.q.send_bytes
        self.sink_buffer += data
        if len(self.sink_buffer) > self.sink_high:
            self.q.pause()

    @rule(data=st.binary(max_size=90))
    def write(self, data: bytes) -> None:
        q = self.q
        assert q is not None
        if q.max_size and q.pending + len(data) > q.max_size:
            with pytest.raises(OutBufOverflow):
                q.write(data)
            return
        assert q.write(data) == len(data)
        self.expected += data

    @rule()
    def flush(self) -> None:
        q = self.q
        assert q is not None
        done = q.flush(self._sink)
        assert done == (q.pending == 0)
        if done and not q.buf.spilled:
            assert q.buf is EMPTY_OUTBUF

    @rule(n=st.integers(min_value=1, max_value=60))
    def drain(self, n: int) -> None:
        q = self.q
        assert q is not None
        self.received += self.sink_buffer[:n]
        del self.sink_buffer[:n]
        if q.sink_paused and len(self.sink_buffer) <= self.sink_high // 4:
            q.resume()

    @rule()
    def reset(self) -> None:
        q = self.q
        assert q is not None
        # What reached the sink stays delivered; what was still queued is forgotten.
        self.received += self.sink_buffer
        self.sink_buffer.clear()
        q.reset()
        self.expected = bytearray(self.received)
        assert q.buf is EMPTY_OUTBUF or q.buf.spilled

    @invariant()
    def bytes_in_order(self) -> None:
        q = self.q
        if q is None:
            return
        delivered = bytes(self.received + self.sink_buffer)
        assert bytes(self.expected[: len(delivered)]) == delivered
        assert q.pending == len(self.expected) - len(delivered)

    @invariant()
    def empty_means_shared(self) -> None:
        q = self.q
        if q is None:
            return
        if q.buf is EMPTY_OUTBUF:
            assert q.pending == 0
        elif not q.buf.spilled:
            assert q.pending > 0  # an own OutBuf without a spill file holds bytes
        assert _empty_outbuf_untouched()

    def teardown(self) -> None:
        if self.q is not None:
            self.q.close()
            assert self.q.buf is EMPTY_OUTBUF and self.q.pending == 0
        assert _empty_outbuf_untouched()


TestFlowQueueMachine = FlowQueueMachine.TestCase
TestFlowQueueMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
