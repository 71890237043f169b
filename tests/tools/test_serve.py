"""``fsmio serve module:app``: a user's Starlette (ASGI) or WSGI application, in a subprocess."""

from __future__ import annotations

import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest
import trustme

from fsmio.tools.cli import main

STARLETTE_APP = textwrap.dedent(
    """
    import contextlib
    import sys

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route


    @contextlib.asynccontextmanager
    async def lifespan(app):
        print("user app: startup", file=sys.stderr, flush=True)
        yield
        print("user app: shutdown", file=sys.stderr, flush=True)


    async def hello(request):
        name = request.query_params.get("name", "world")
        return PlainTextResponse(f"Hello, {name}! root={request.scope['root_path']}")


    app = Starlette(routes=[Route("/hello", hello)], lifespan=lifespan)
    """
)

FAILING_APP = textwrap.dedent(
    """
    import contextlib

    from starlette.applications import Starlette


    @contextlib.asynccontextmanager
    async def lifespan(app):
        raise RuntimeError("cannot reach the database")
        yield


    app = Starlette(lifespan=lifespan)
    """
)

WSGI_APP = textwrap.dedent(
    """
    import threading


    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"wsgi on {threading.current_thread().name}".encode()]
    """
)

LINE = re.compile(r"serving (\S+) \((ASGI|WSGI)\) on (https?)://([^:\s]+):(\d+)")


class Served:
    """``fsmio serve`` in a subprocess; its stdout and stderr read in threads."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fsmio", "serve", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: queue.Queue[str | None] = queue.Queue()
        self.err_lines: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._collect, args=(self.proc.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: IO[str], into: queue.Queue[str | None]) -> None:
        for line in stream:
            into.put(line)
        into.put(None)

    def _collect(self, stream: IO[str]) -> None:
        for line in stream:
            self.err_lines.append(line)

    def serving_line(self, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.stdout.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            match = LINE.search(line)
            if match:
                return match
        raise AssertionError(f"no serving line; stderr: {''.join(self.err_lines)}")

    def finish(self, timeout: float = 30) -> str:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=30)
            for thread in self._threads:
                thread.join(timeout=10)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
        return "".join(self.err_lines)

    def stop(self) -> str:
        """SIGTERM, then what ``finish`` returns."""
        self.proc.send_signal(signal.SIGTERM)
        return self.finish()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.poll() is None:  # a failed assertion: do not leave it running
            self.proc.kill()
            self.finish()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_a_starlette_app(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "userapp.py").write_text(STARLETTE_APP)
    served = Served(
        tmp_path, "userapp:app", "--host", "127.0.0.1", "--port", "0", "--root-path", "/r"
    )
    try:
        match = served.serving_line()
        assert match.group(1) == "userapp:app"
        assert match.group(2) == "ASGI"
        port = int(match.group(5))
        assert port > 0
        with httpx.Client(timeout=10) as client:
            # as behind a proxy that strips the root path (uvicorn --root-path)
            response = client.get(f"http://127.0.0.1:{port}/hello?name=fsmio")
        assert response.status_code == 200
        assert response.text == "Hello, fsmio! root=/r"
        served.proc.send_signal(sig)
        err = served.finish()
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.finish()
    assert served.proc.returncode == 0, err
    assert "user app: startup" in err
    assert "user app: shutdown" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_serve_a_wsgi_app_with_threads(tmp_path: Path) -> None:
    (tmp_path / "wsgiapp.py").write_text(WSGI_APP)
    served = Served(tmp_path, "wsgiapp:app", "--port", "0", "--threads", "2")
    try:
        match = served.serving_line()
        assert match.group(2) == "WSGI"
        with httpx.Client(timeout=10) as client:
            response = client.get(f"http://127.0.0.1:{match.group(5)}/")
        assert response.text.startswith("wsgi on wsgi-wsgi-server-")
        served.proc.send_signal(signal.SIGTERM)
        err = served.finish()
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.finish()
    assert served.proc.returncode == 0, err


@pytest.mark.slow
def test_serve_lifespan_startup_failure_exits_3(tmp_path: Path) -> None:
    (tmp_path / "failapp.py").write_text(FAILING_APP)
    served = Served(tmp_path, "failapp:app", "--port", "0")
    err = served.finish(timeout=30)
    assert served.proc.returncode == 3, err
    assert "ASGI lifespan startup failed" in err
    assert "cannot reach the database" in err


@pytest.mark.slow
def test_serve_port_in_use_exits_1(tmp_path: Path) -> None:
    (tmp_path / "wsgiapp.py").write_text(WSGI_APP)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        served = Served(tmp_path, "wsgiapp:app", "--port", str(port))
        err = served.finish(timeout=30)
    assert served.proc.returncode == 1, err
    assert "port in use" in err


def test_unknown_app_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "no_such_module_zz:app", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "fsmio serve: error:" in err
    assert "no module named 'no_such_module_zz'" in err


def test_option_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "x:y", "--ssl-keyfile", "k.pem"]) == 2
    assert "--ssl-keyfile needs --ssl-certfile" in capsys.readouterr().err
    assert main(["serve", "x:y", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["serve", "x:y", "--interface", "grpc"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["serve", "x:y", "--lifespan", "maybe"])
    assert info.value.code == 2


WS_ECHO_APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] == "websocket":
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                await send({"type": "websocket.send", "text": message["text"]})
        elif scope["type"] == "http":
            upgrade = dict(scope["headers"]).get(b"upgrade", b"-").decode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": f"http, upgrade {upgrade}".encode()})
    """
)


@pytest.mark.slow
def test_serve_websocket_options(tmp_path: Path) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    (tmp_path / "wsapp.py").write_text(WS_ECHO_APP)
    args = ("wsapp:app", "--port", "0", "--lifespan", "off", "--ws-max-size", "16")
    with Served(tmp_path, *args, "--ws-ping-interval", "0") as served:
        port = served.serving_line().group(5)
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=10) as ws:
            ws.send("x" * 16)
            assert ws.recv(timeout=10) == "x" * 16
            ws.send("y" * 17)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009
        err = served.stop()
    assert served.proc.returncode == 0, err
    no_ws = ("wsapp:app", "--port", "0", "--lifespan", "off", "--ws", "none")
    with Served(tmp_path, *no_ws) as served:
        port = served.serving_line().group(5)
        headers = {"Upgrade": "websocket", "Connection": "Upgrade"}
        with httpx.Client(timeout=10) as client:
            response = client.get(f"http://127.0.0.1:{port}/", headers=headers)
        assert response.status_code == 200 and response.text == "http, upgrade websocket"
        err = served.stop()
    assert served.proc.returncode == 0, err


def test_websocket_option_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "wsgi_only_app.py").write_text(WSGI_APP)
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        assert main(["serve", "wsgi_only_app:app", "--ws-max-size", "10"]) == 2
    finally:
        sys.path.remove(str(tmp_path))
    assert "the --ws-* options are for an ASGI application" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["serve", "x:y", "--ws-per-message-deflate", "maybe"])
    assert info.value.code == 2
    assert "expected true or false, not 'maybe'" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--host",
        "--port",
        "--interface",
        "--ssl-certfile",
        "--ssl-keyfile",
        "--log-level",
        "--root-path",
        "--lifespan",
        "--threads",
        "--ws",
        "--ws-max-size",
        "--ws-ping-interval",
        "--ws-ping-timeout",
        "--ws-per-message-deflate",
    ):
        assert option in out


@pytest.mark.slow
def test_serve_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    (tmp_path / "userapp.py").write_text(STARLETTE_APP)
    served = Served(
        tmp_path,
        "userapp:app",
        "--port",
        "0",
        "--ssl-certfile",
        str(cert_file),
        "--ssl-keyfile",
        str(key_file),
    )
    try:
        match = served.serving_line()
        assert match.group(3) == "https"
        with httpx.Client(
            verify=ssl.create_default_context(cafile=str(ca_file)), timeout=10
        ) as client:
            response = client.get(f"https://127.0.0.1:{match.group(5)}/hello")
        assert response.text == "Hello, world! root="
        served.proc.send_signal(signal.SIGTERM)
        err = served.finish()
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.finish()
    assert served.proc.returncode == 0, err
