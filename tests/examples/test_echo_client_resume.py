"""``python -m fsmio.examples.echo_client`` as the reconnecting GConnex client, tried from
outside as a user would: failover, retry intervals, the connect timeout, a server killed
and restarted mid-run, half-echoed messages, idle connections, and a second Ctrl-C.

Every wait is bounded; every process and thread is stopped in a ``finally``.
"""

from __future__ import annotations

import datetime
import itertools
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import CLIENT, OK_LINE, Server, closed_port, ready, run_client

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


class Client:
    """A running echo_client whose stderr goes to a file read while it runs."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.stderr_path = tmp_path / f"client-{time.monotonic_ns()}.err"
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", CLIENT, *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=tmp_path,
            )
        self.stdout = ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, text: str, count: int = 1, timeout: float = 20.0) -> None:
        """Until ``text`` is ``count`` times in stderr (fails after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while self.stderr().count(text) < count:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited before {text!r} x{count}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} x{count} in {timeout} s: {self.stderr()}")
            time.sleep(0.01)

    def wait(self, timeout: float = 60.0) -> int:
        out, _ = self.proc.communicate(timeout=timeout)
        self.stdout = out.decode()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=15)


@pytest.fixture
def start_client(tmp_path: Path) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def start(*args: str) -> Client:
        client = Client(tmp_path, *args)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.kill()


def stamps(stderr: str, text: str) -> list[float]:
    """The times (seconds) of the log lines that contain ``text``."""
    out = []
    for line in stderr.splitlines():
        match = _STAMP.match(line)
        if match and text in line:
            when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            out.append(when.timestamp())
    return out


def ok(stdout: str, count: int, size: int, reconnections: int) -> None:
    match = OK_LINE.match(stdout.strip())
    assert match, stdout
    assert (int(match.group(1)), int(match.group(2))) == (count, count * size)
    assert int(match.group(5)) == reconnections


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# ----------------------------------------------------------------------------------------
def test_failover_refused_refused_live(start_server: Callable[..., Server], tmp_path: Path) -> None:
    server = start_server("--port", "0")
    port = ready(server)
    dead1, dead2 = closed_port(), closed_port()
    result = run_client(
        tmp_path,
        "--connect",
        f"127.0.0.1:{dead1},127.0.0.1:{dead2}",
        "--connect",
        f"127.0.0.1:{port}",
        "--count",
        "200",
        "--size",
        "700",
        "--retry-interval",
        "5",  # a wait would show: the next destination of a round is tried at once
    )
    assert result.returncode == 0, result.stderr
    ok(result.stdout, 200, 700, 0)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, result.stderr  # one line per failed attempt, nothing else
    for line, port, attempt in ((lines[0], dead1, 1), (lines[1], dead2, 2)):
        expected = f"127.0.0.1:{port} failed: refused (attempt {attempt}); next destination now"
        assert expected in line
    assert server.stop(signal.SIGTERM) == 0, server.stderr()


@pytest.mark.slow
def test_retry_interval_is_kept_and_no_fd_leaks_over_100_refused_attempts(
    start_client: Callable[..., Client],
) -> None:
    port = closed_port()
    # 0.1 s: the ±20 % band (20 ms) is wider than a wake-up delayed by a busy 2-core
    # machine, and 100 attempts still take only ten seconds.
    interval = 0.1
    client = start_client(
        "--port",
        str(port),
        "--retry-interval",
        str(interval),
        "--connect-attempts",
        "101",
        "--deadline",
        "60",
    )
    failed = f"connect to 127.0.0.1:{port} failed: refused"
    fds = []
    for attempts in (5, 25, 50, 75, 95):
        client.wait_for(failed, attempts)
        fds.append(open_fds(client.proc.pid))
    assert client.wait() == 1
    err = client.stderr()
    assert "giving up after 101 failed attempts" in err
    # An attempt in progress holds one socket, so one more fd may be seen at a sample.
    assert max(fds) - min(fds) <= 1, fds
    times = stamps(err, failed)
    assert len(times) == 100
    gaps = [b - a for a, b in itertools.pairwise(times)]
    within = [gap for gap in gaps if abs(gap - interval) <= 0.2 * interval]
    # Log stamps are in whole milliseconds and the machine is shared: a rare late wake-up
    # is not the policy's fault, but no wait is early and the typical one is exact.
    assert len(within) >= 0.95 * len(gaps), gaps
    assert min(gaps) >= 0.8 * interval - 0.002, gaps
    assert abs(statistics.median(gaps) - interval) <= 0.1 * interval, gaps


@pytest.mark.slow
def test_backoff_factor_doubles_the_wait_up_to_its_maximum(tmp_path: Path) -> None:
    port = closed_port()
    result = run_client(
        tmp_path,
        *("--port", str(port), "--retry-interval", "0.1", "--backoff-factor", "2"),
        *("--backoff-max", "0.4", "--connect-attempts", "6"),
    )
    assert result.returncode == 1
    times = stamps(result.stderr, "failed: refused")
    assert len(times) == 5  # the 6th is the GConnex's "giving up" line
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, expected in zip(gaps, (0.1, 0.2, 0.4, 0.4), strict=True):
        assert abs(gap - expected) <= 0.2 * expected, gaps


@pytest.mark.slow
def test_jittered_waits_are_announced_and_kept(tmp_path: Path) -> None:
    port = closed_port()
    result = run_client(
        tmp_path,
        *("--port", str(port), "--retry-interval", "0.1", "--backoff-jitter", "0.5"),
        *("--connect-attempts", "16"),
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "failed: refused" in line]
    assert len(lines) == 15
    announced = [float(re.findall(r"next attempt in ([\d.]+) s", line)[0]) for line in lines]
    assert all(0.05 <= wait <= 0.15 for wait in announced), announced
    assert len(set(announced)) > 5  # jittered, not fixed
    times = stamps(result.stderr, "failed: refused")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    kept = [abs(gap - wait) <= 0.2 * wait for gap, wait in zip(gaps, announced, strict=False)]
    assert kept.count(True) >= len(kept) - 1, list(zip(gaps, announced, strict=False))


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listener that never accepts, its backlog filled: Linux then drops new SYNs."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)
        probe = socket.socket()
        fillers.append(probe)
        probe.settimeout(0.5)
        with pytest.raises(TimeoutError):  # the fixture works: a connect now hangs
            probe.connect(("127.0.0.1", port))
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.slow
def test_connect_timeout_is_honoured_against_a_full_backlog(
    full_backlog: int, tmp_path: Path
) -> None:
    timeout = 1.5
    started = time.monotonic()
    result = run_client(
        tmp_path,
        *("--port", str(full_backlog), "--connect-timeout", str(timeout)),
        *("--retry-interval", "0.05", "--connect-attempts", "3"),
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "FAILED: cannot connect to" in result.stderr
    times = stamps(result.stderr, f"connect to 127.0.0.1:{full_backlog} failed")
    times += stamps(result.stderr, "giving up after 3 failed attempts")
    assert len(times) == 3, result.stderr
    for gap in (times[1] - times[0], times[2] - times[1]):
        assert abs(gap - (timeout + 0.05)) <= 0.5, (gap, result.stderr)
    assert 3 * timeout - 0.5 <= elapsed <= 3 * timeout + 10  # + the interpreter's start


@pytest.mark.slow
def test_server_killed_and_restarted_3_s_later_the_run_completes_intact(
    start_server: Callable[..., Server], start_client: Callable[..., Client]
) -> None:
    first = start_server("--port", "0")
    port = ready(first)
    count, size = 60_000, 200
    client = start_client(
        *("--port", str(port), "--count", str(count), "--size", str(size)),
        *("--retry-interval", "0.2", "--deadline", "100", "--log-level", "INFO"),
    )
    client.wait_for(f"connected to 127.0.0.1:{port}")
    time.sleep(0.3)
    assert client.proc.poll() is None, "the run was over before the server was killed"
    first.proc.kill()
    client.wait_for(f"connection to 127.0.0.1:{port} lost:")
    time.sleep(3)
    second = start_server("--port", str(port))
    assert ready(second) == port
    assert client.wait(timeout=100) == 0, client.stderr()
    ok(client.stdout, count, size, 1)
    err = client.stderr()
    assert err.count(" lost: ") == 1
    assert err.count(f"reconnected to 127.0.0.1:{port} after ") == 1
    down = re.search(r"reconnected to \S+ after ([\d.]+) s down", err)
    assert down is not None and 2.5 <= float(down.group(1)) <= 10, err
    assert err.count("failed: refused") >= 5  # the server was down: one line per attempt
    assert "Traceback" not in err
    assert second.stop(signal.SIGTERM) == 0, second.stderr()


class ScriptedServer:
    """Accepts connections one after the other on a thread.  The first connection echoes
    ``first_bytes`` bytes (the last one flipped when ``corrupt``), then closes (``then
    ="close"``) or goes silent (``"stall"``); later connections echo everything."""

    def __init__(self, first_bytes: int, then: str, corrupt: bool = False) -> None:
        self.first_bytes = first_bytes
        self.then = then
        self.corrupt = corrupt
        self.connections = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        self.listener.close()
        assert not self.thread.is_alive()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                self._echo(conn, self.first_bytes if self.connections == 1 else -1)

    def _echo(self, conn: socket.socket, limit: int) -> None:
        conn.settimeout(0.1)
        echoed = 0
        while not self.stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if limit >= 0:
                data = data[: max(limit - echoed, 0)]
                if self.corrupt and data and echoed + len(data) == limit:
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
            if data:
                conn.sendall(data)
                echoed += len(data)
            if limit >= 0 and echoed >= limit and self.then == "close":
                return


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(*args: object, **kw: object) -> ScriptedServer:
        server = ScriptedServer(*args, **kw)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_a_half_echoed_message_is_sent_again_and_counted_once(
    scripted: Callable[..., ScriptedServer], tmp_path: Path
) -> None:
    # Messages 1 and 2 come back whole, message 3 half, then the server closes.
    server = scripted(2500, "close")
    result = run_client(
        tmp_path,
        *("--port", str(server.port), "--count", "5", "--size", "1000"),
        *("--retry-interval", "0.05", "--deadline", "20"),
    )
    assert result.returncode == 0, result.stderr
    ok(result.stdout, 5, 1000, 1)
    assert server.connections == 2
    assert "lost: eof; 2 of 5 messages echoed, 500 bytes of message 3 thrown away" in (
        result.stderr
    )
    assert "resuming at message 3 of 5" in result.stderr


def test_a_close_right_after_a_whole_echo_resumes_at_the_next_message(
    scripted: Callable[..., ScriptedServer], tmp_path: Path
) -> None:
    # Message 1 comes back whole with the server's FIN; message 2 goes to a dying
    # connection and is sent again on the next one.
    server = scripted(1000, "close")
    result = run_client(
        tmp_path,
        *("--port", str(server.port), "--count", "3", "--size", "1000"),
        *("--retry-interval", "0.05", "--deadline", "20"),
    )
    assert result.returncode == 0, result.stderr
    ok(result.stdout, 3, 1000, 1)
    assert re.search(r"lost: \w+; 1 of 3 messages echoed\n", result.stderr), result.stderr
    assert "resuming at message 2 of 3" in result.stderr


def test_a_wrong_byte_in_a_half_echoed_message_is_a_mismatch(
    scripted: Callable[..., ScriptedServer], tmp_path: Path
) -> None:
    server = scripted(2500, "close", corrupt=True)
    result = run_client(
        tmp_path,
        *("--port", str(server.port), "--count", "5", "--size", "1000"),
        *("--retry-interval", "0.05", "--deadline", "20"),
    )
    assert result.returncode == 1
    assert "FAILED: message 3: echoed byte 499 differs from what was sent" in result.stderr


def test_an_idle_connection_is_dropped_and_a_new_one_made(
    scripted: Callable[..., ScriptedServer], tmp_path: Path
) -> None:
    # The first connection goes silent after half of message 2 but stays open.
    server = scripted(1500, "stall")
    started = time.monotonic()
    result = run_client(
        tmp_path,
        *("--port", str(server.port), "--count", "4", "--size", "1000"),
        *("--inactivity-timeout", "0.5", "--retry-interval", "0.05", "--deadline", "20"),
    )
    assert result.returncode == 0, result.stderr
    ok(result.stdout, 4, 1000, 1)
    assert "lost: dropped; 1 of 4 messages echoed, 500 bytes of message 2 thrown away" in (
        result.stderr
    )
    assert server.connections == 2
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--connect", "127.0.0.1:1", "--port", "2"), "not both"),
        ((), "no server"),
        (("--connect", "127.0.0.1"), "--connect '127.0.0.1': '127.0.0.1': a destination is"),
        (("--connect", "127.0.0.1:99999"), "--connect '127.0.0.1:99999': '99999' is not an int"),
        (("--port", "1", "--backoff-jitter", "2"), "--backoff-jitter"),
        (("--port", "1", "--retry-interval", "0"), "--retry-interval"),
    ],
)
def test_bad_options_are_clear_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run_client(tmp_path, *args, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------------------
#   A second SIGINT: out at once with 130, no traceback
# ----------------------------------------------------------------------------------------
def _second_sigint(proc: subprocess.Popen[bytes], stderr: Callable[[], str]) -> None:
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None, f"stopped at the first SIGINT: {stderr()}"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=15)
    assert proc.returncode == 130, stderr()
    assert "Traceback" not in stderr()
    assert "interrupted" in stderr()


def test_echo_server_exits_130_on_a_second_sigint(start_server: Callable[..., Server]) -> None:
    server = start_server("--port", "0")
    port = ready(server)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as peer:
        # A peer that sends and never reads: the server's echo output piles up, so its
        # graceful stop waits to deliver it (shutdown_grace) and a second SIGINT is due.
        # Sent until the server stops reading (its pending output is past its high-water
        # mark) for half a second.
        peer.setblocking(False)
        chunk, sent = b"x" * 65536, 0
        deadline = progress = time.monotonic()
        deadline += 10
        while time.monotonic() < min(deadline, progress + 0.5):
            try:
                sent += peer.send(chunk)
                progress = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
        assert sent > 1_000_000
        _second_sigint(server.proc, server.stderr)


def test_echo_client_exits_130_on_a_second_sigint(start_client: Callable[..., Client]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(15)
        port = listener.getsockname()[1]
        # One 50 MB message to a peer that never reads: the client's graceful stop waits.
        client = start_client("--port", str(port), "--count", "1", "--size", "50000000")
        conn, _ = listener.accept()
        with conn:
            time.sleep(0.5)
            _second_sigint(client.proc, client.stderr)
