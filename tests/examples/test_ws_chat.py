"""``python -m fsmio.examples.ws_chat`` as a program, with real HTTP and WebSocket clients
(the browser test is ``test_ws_chat_browser.py``)."""

from __future__ import annotations

import json
import signal

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from fsmio.examples.ws_chat import _parse, load_page

from .ws_chat_proc import ws_chat_process


@pytest.mark.slow
def test_ws_chat_page_and_broadcast() -> None:
    with ws_chat_process() as (proc, port):
        base = f"http://127.0.0.1:{port}"
        page = httpx.get(base + "/", timeout=10)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "connect-src 'self'" in page.headers["content-security-policy"]
        assert '<form id="send"' in page.text
        assert httpx.get(base + "/nope", timeout=10).status_code == 404
        url = f"ws://127.0.0.1:{port}/ws"
        with connect(url, open_timeout=10) as ann, connect(url, open_timeout=10) as bob:
            welcome = json.loads(ann.recv(timeout=10))
            assert welcome["type"] == "welcome" and welcome["history"] == []
            json.loads(bob.recv(timeout=10))  # bob's welcome
            ann.send(json.dumps({"name": "ann", "text": "hello <b>bob</b>"}))
            ann.send("not json")  # dropped, the connection stays
            ann.send(json.dumps({"name": "ann", "text": "x" * 5000}))  # cut to 1000
            for tab in (ann, bob):
                chat = []
                for _ in range(10):  # notes (joined) come too
                    message = json.loads(tab.recv(timeout=10))
                    if message["type"] == "message":
                        chat.append(message)
                        if len(chat) == 2:
                            break
                assert chat[0] == {
                    "type": "message",
                    "name": "ann",
                    "text": "hello <b>bob</b>",
                    "online": 2,
                }
                assert chat[1]["text"] == "x" * 1000
        with connect(url, open_timeout=10) as late:
            welcome = json.loads(late.recv(timeout=10))
            assert [m["text"][:5] for m in welcome["history"]] == ["hello", "xxxxx"]
        # the cross-site WebSocket hijacking check
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin="http://evil.example", open_timeout=10)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err.decode()


def test_hostile_messages_are_dropped() -> None:
    assert _parse('{"name": "a", "text": "hi"}') == ("a", "hi")
    assert _parse('{"name": " a \\n b ", "text": " hi "}') == ("a b", "hi")
    for bad in ('"text"', "[1]", '{"text": 5}', '{"name": 1, "text": "x"}', '{"text": "  "}'):
        assert _parse(bad) is None
    assert _parse(b'{"text": "x"}') is None
    assert _parse("{" * 10_000) is None


def test_page_comes_from_the_package() -> None:
    page, headers = load_page()
    assert page.startswith(b"<!doctype html>")
    csp = dict(headers)[b"Content-Security-Policy"].decode()
    assert "script-src 'sha256-" in csp and "'unsafe-inline'" not in csp
