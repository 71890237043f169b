"""The output queue core: a bytes model, spill files, flow-control edges, a fake sink."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmio.gobjs.outbuf import FlowQueue, OutBuf, OutBufOverflow, as_bytes

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
