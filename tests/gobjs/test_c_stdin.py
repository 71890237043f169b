"""GStdin: lines of a pipe, a file or /dev/null as events, on the GAplic's loop."""

from __future__ import annotations

import contextlib
import os
import pty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsmio import GAplic, GConfigValidateError, GObj, GObjError, GStdin
from tests.helpers import drive, drive_for


def ac_line(self: Any, event: Any) -> None:
    self.lines.append((event.data, event.partial))


def ac_eof(self: Any, event: Any) -> None:
    self.eofs.append(event.reason)


class Reader(GObj):
    def __init__(self) -> None:
        GObj.__init__(
            self,
            {
                "event_list": ("EV_RX_DATA: bottom input", "EV_EOF: bottom input"),
                "state_list": ("ST_IDLE",),
                "machine": {"ST_IDLE": (("EV_RX_DATA", ac_line, None), ("EV_EOF", ac_eof, None))},
            },
        )
        self.lines: list[tuple[str, bool]] = []
        self.eofs: list[str] = []


@pytest.fixture(params=[True, False], ids=["uvloop", "asyncio"])
def ga(request: pytest.FixtureRequest) -> Iterator[GAplic]:
    gaplic = GAplic("stdin", use_uvloop=request.param)
    try:
        yield gaplic
    finally:
        gaplic.close()


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def reader_of(ga: GAplic, source: Any, **kw: Any) -> tuple[Reader, GStdin]:
    reader = ga.create_gobj("reader", Reader, None)
    stdin = ga.create_gobj("stdin", GStdin, reader, file=source, **kw)
    return reader, stdin


def test_lines_from_a_pipe_then_eof(ga: GAplic, pipe: tuple[int, int]) -> None:
    r, w = pipe
    reader, stdin = reader_of(ga, r)
    os.write(w, b"one\ntw")
    drive(ga, lambda: reader.lines == [("one", False)])
    os.write(w, "o\nunicode é €\n".encode())
    drive(ga, lambda: len(reader.lines) == 3)
    assert reader.lines[1:] == [("two", False), ("unicode é €", False)]
    os.write(w, b"no end of line")
    os.close(w)
    drive(ga, lambda: reader.eofs == ["eof"])
    assert reader.lines[-1] == ("no end of line", False)  # delivered before EV_EOF
    assert stdin.get_current_state() == "ST_CLOSED"
    # The descriptor given is the program's: never closed, its blocking mode restored.
    assert os.get_blocking(r) is True
    os.fstat(r)


def test_a_line_split_inside_a_utf8_character(ga: GAplic, pipe: tuple[int, int]) -> None:
    r, w = pipe
    reader, _ = reader_of(ga, r)
    data = "añb\n".encode()
    os.write(w, data[:2])
    drive_for(ga, 0.05)
    os.write(w, data[2:])
    drive(ga, lambda: reader.lines == [("añb", False)])


def test_long_lines_come_in_pieces(ga: GAplic, pipe: tuple[int, int]) -> None:
    r, w = pipe
    reader, stdin = reader_of(ga, r, max_line_size=4)
    os.write(w, b"abcdefghij\nxy\nabcd\n")
    drive(ga, lambda: len(reader.lines) == 5)
    assert reader.lines == [
        ("abcd", True),
        ("efgh", True),
        ("ij", False),
        ("xy", False),
        ("abcd", False),  # exactly the limit: one line
    ]
    assert len(stdin._pending) == 0
    # Memory stays bounded while a line never ends.
    os.write(w, b"z" * 10_000)
    # (the last 4 wait: an eol right after them would make them a whole line)
    drive(ga, lambda: len(reader.lines) == 5 + 2499)
    assert stdin._pending == "zzzz"
    assert set(reader.lines[5:]) == {("zzzz", True)}


def test_another_eol(ga: GAplic, pipe: tuple[int, int]) -> None:
    r, w = pipe
    reader, _ = reader_of(ga, r, eol="\r\n")
    os.write(w, b"a\nb\r\nc\r")
    drive(ga, lambda: reader.lines == [("a\nb", False)])
    os.write(w, b"\n")
    drive(ga, lambda: reader.lines == [("a\nb", False), ("c", False)])


def test_a_regular_file(ga: GAplic, tmp_path: Path) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(20_000)))
    with open(path, "rb") as file:
        reader, _ = reader_of(ga, file)
        drive(ga, lambda: reader.eofs == ["eof"], timeout=30)
    assert len(reader.lines) == 20_000
    assert reader.lines[0] == ("line 0", False) and reader.lines[-1] == ("line 19999", False)


def test_dev_null(ga: GAplic) -> None:
    with open(os.devnull, "rb") as file:
        reader, _ = reader_of(ga, file)
        drive(ga, lambda: reader.eofs == ["eof"])
    assert reader.lines == []


def test_destroying_it_stops_reading(ga: GAplic, pipe: tuple[int, int]) -> None:
    r, w = pipe
    reader, stdin = reader_of(ga, r)
    os.write(w, b"first\n")
    drive(ga, lambda: reader.lines == [("first", False)])
    ga.destroy_gobj(stdin)
    os.write(w, b"second\n")
    drive_for(ga, 0.05)
    assert reader.lines == [("first", False)]
    assert os.get_blocking(r) is True
    assert os.read(r, 100) == b"second\n"  # the program's descriptor still works


def test_stopping_the_gaplic_stops_reading(pipe: tuple[int, int]) -> None:
    r, w = pipe
    ga = GAplic("stdin-stop")
    try:
        reader, _ = reader_of(ga, r)
        os.write(w, b"x\n")
        ga.add_callback(lambda: ga.call_later(0.05, ga.stop))
        ga.start()  # returns: the open pipe does not keep it running
        assert reader.lines == [("x", False)]
    finally:
        ga.close()


def test_events_sent_to_it(ga: GAplic, pipe: tuple[int, int]) -> None:
    # As ginsfsm's (its GSock sent it EV_RX_DATA): text or bytes sent by anyone.
    r, _ = pipe
    reader, stdin = reader_of(ga, r)
    reader.send_event(stdin, "EV_RX_DATA", data="a\nb")
    reader.send_event(stdin, "EV_RX_DATA", data=b"c\n")
    assert reader.lines == [("a", False), ("bc", False)]
    reader.send_event(stdin, "EV_EOF")
    assert reader.eofs == ["eof"]
    with pytest.raises(TypeError, match="must be str or bytes"):
        stdin.set_new_state("ST_IDLE")
        reader.send_event(stdin, "EV_RX_DATA", data=5)


def test_bad_config(ga: GAplic) -> None:
    reader = ga.create_gobj("reader", Reader, None)
    with pytest.raises(GConfigValidateError, match="eol"):
        ga.create_gobj(None, GStdin, reader, eol="")
    with pytest.raises(GConfigValidateError, match="encoding"):
        ga.create_gobj(None, GStdin, reader, encoding="no-such-codec")
    with pytest.raises(GConfigValidateError, match="file"):
        ga.create_gobj(None, GStdin, reader, file="stdin")
    with pytest.raises(GObjError, match="cannot read"):
        ga.create_gobj(None, GStdin, reader, file=10_000)
    with pytest.raises(GObjError, match="needs a GAplic"):
        GObj().create_gobj(None, GStdin, None)


def test_a_terminal(ga: GAplic) -> None:
    # A tty (what `python prog.py` in a shell reads): lines as typed, Ctrl-D is the end;
    # the terminal is left in blocking mode.
    master, slave = pty.openpty()
    try:
        reader, _ = reader_of(ga, slave)
        os.write(master, b"typed\n")
        drive(ga, lambda: reader.lines == [("typed", False)])
        os.write(master, b"\x04")  # Ctrl-D at the start of a line
        drive(ga, lambda: reader.eofs == ["eof"])
        assert os.get_blocking(slave) is True
    finally:
        os.close(master)
        os.close(slave)
