"""A real ``nats-server`` for the tests: 127.0.0.1, an ephemeral port, stopped by PID.

A missing binary is a test failure, never a skip (``.ci/run`` installs Debian's).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class NatsServer:
    """``start()`` it, read ``url``, ``kill()``/``stop()`` and ``start()`` it again on the
    same port (``restart()``).  ``config`` is the text of a server config file."""

    def __init__(
        self, config: str = "", extra_args: tuple[str, ...] = (), jetstream: bool = False
    ) -> None:
        binary = shutil.which("nats-server") or (
            "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None
        )
        if binary is None:
            raise AssertionError(
                "nats-server is not installed (Debian: apt-get install nats-server); "
                "the remote-event tests need a real server"
            )
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="fsmio-nats-"))
        self.config = config
        self.extra_args = extra_args
        if jetstream:  # file storage in our directory: it survives a restart
            self.extra_args += ("-js", "-sd", str(self.dir / "js"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None, "already running"
        args = [self.binary, "-a", "127.0.0.1", "-p", str(self.port or -1)]
        args += ["--ports_file_dir", str(self.dir), "-l", str(self.dir / "log")]
        if self.config:
            conf = self.dir / "server.conf"
            conf.write_text(self.config)
            args += ["-c", str(conf)]
        args += list(self.extra_args)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        ports_file = self.dir / f"nats-server_{self.proc.pid}.ports"
        while True:
            if self.proc.poll() is not None:
                log = (self.dir / "log").read_text() if (self.dir / "log").exists() else ""
                self.proc = None
                raise AssertionError(f"nats-server exited at start: {log[-2000:]}")
            if ports_file.exists():
                try:
                    urls = json.loads(ports_file.read_text())["nats"]
                except (ValueError, KeyError):
                    urls = []
                if urls:
                    self.port = int(urls[0].rsplit(":", 1)[1])
                    if self._accepts():
                        return
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("nats-server did not start in time")
            time.sleep(0.01)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def _end(self, sig: int, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        (self.dir / f"nats-server_{proc.pid}.ports").unlink(missing_ok=True)

    def stop(self) -> None:
        """Graceful stop (SIGINT)."""
        self._end(signal.SIGINT)

    def kill(self) -> None:
        """A crash (SIGKILL)."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.start()

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text() if path.exists() else ""

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
