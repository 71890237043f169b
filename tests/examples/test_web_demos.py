"""``python -m fsmio.examples.wsgi_demo`` and ``asgi_demo``: READY line, answers, clean stop."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.examples.conftest import Server, ready


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(module: str, *args: str) -> Server:
        err = tmp_path / f"demo{len(servers)}.err"
        with err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=tmp_path,  # outside the checkout: the installed package
            )
        server = Server(proc, err)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.communicate(timeout=15)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "hello"),
    [
        ("fsmio.examples.wsgi_demo", "Hello from fsmio (WSGI)\n"),
        ("fsmio.examples.asgi_demo", "Hello from fsmio (ASGI), request 1\n"),
    ],
)
def test_demo(start_demo: Callable[..., Server], module: str, hello: str) -> None:
    server = start_demo(module)
    port = ready(server)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/").text == hello
        payload = bytes(range(256)) * 1000
        assert client.post("/echo", content=payload).content == payload
        assert client.get("/stream").text == "".join(f"line {n}\n" for n in range(10))
        assert client.get("/missing").status_code == 404
    assert server.stop(signal.SIGTERM) == 0, server.stderr()
    if module.endswith("asgi_demo"):
        assert "lifespan shutdown" in server.stderr()


@pytest.mark.slow
def test_demo_port_in_use(start_demo: Callable[..., Server]) -> None:
    first = start_demo("fsmio.examples.wsgi_demo")
    port = ready(first)
    second = start_demo("fsmio.examples.asgi_demo", "--port", str(port))
    assert second.wait() == 1
    assert "cannot listen" in second.stderr()
    assert first.stop(signal.SIGINT) == 0
