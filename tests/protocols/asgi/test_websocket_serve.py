"""A FastAPI WebSocket endpoint, unchanged, on ``fsmio serve`` (a subprocess), with the
``websockets`` client; stopping the server closes an open WebSocket with 1001."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.tools.test_serve import Served

FASTAPI_APP = textwrap.dedent(
    """
    from fastapi import FastAPI, WebSocket, WebSocketDisconnect

    app = FastAPI()
    rooms: dict[str, list[WebSocket]] = {}


    @app.get("/health")
    async def health():
        return {"ok": True}


    @app.websocket("/rooms/{room}")
    async def chat(websocket: WebSocket, room: str, name: str = "anon"):
        await websocket.accept()
        members = rooms.setdefault(room, [])
        members.append(websocket)
        try:
            while True:
                text = await websocket.receive_text()
                for member in list(members):
                    await member.send_json({"room": room, "from": name, "text": text})
        except WebSocketDisconnect:
            members.remove(websocket)
    """
)


@pytest.mark.slow
def test_fastapi_websocket_endpoint_on_fsmio_serve(tmp_path: Path) -> None:
    (tmp_path / "chatapp.py").write_text(FASTAPI_APP)
    served = Served(tmp_path, "chatapp:app", "--host", "127.0.0.1", "--port", "0")
    try:
        port = int(served.serving_line().group(5))
        url = f"ws://127.0.0.1:{port}/rooms/lobby"
        with connect(url + "?name=ann", open_timeout=10) as ann:
            with connect(url + "?name=bob", open_timeout=10) as bob:
                bob.send("hi all")
                expected = '{"room":"lobby","from":"bob","text":"hi all"}'
                assert ann.recv(timeout=10) == expected
                assert bob.recv(timeout=10) == expected
            ann.send("bob left")
            assert "bob left" in str(ann.recv(timeout=10))
            served.proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                ann.recv(timeout=20)
            assert ann.close_code == 1001
        err = served.finish()
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.finish()
    assert served.proc.returncode == 0, err
    assert "Traceback" not in err
