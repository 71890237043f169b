"""ginsfsm's examples/http/simple_http_server.py runs on fsmio after changing only its
imports, and answers as it did under ginsfsm: 200, text/plain, the same body, Content-Length
and ``Connection: close`` (ginsfsm's HttpSimpleOkResponse closes by default)."""

from __future__ import annotations

import http.client
import importlib.util
import sys
import threading
import uuid
from pathlib import Path

from fsmio import GSock
from tests.porting.test_ginsfsm_program import port

ORIGINAL = Path(__file__).with_name("simple_http_server.py.txt")


def test_only_import_lines_change() -> None:
    original = ORIGINAL.read_text().splitlines()
    ported = port(ORIGINAL.read_text()).splitlines()
    changed = [(a, b) for a, b in zip(original, ported, strict=True) if a != b]
    assert len(changed) == 6
    assert all(a.startswith("from ginsfsm") and b.startswith("from fsmio") for a, b in changed)


def test_ported_simple_http_server_answers_as_the_original(tmp_path: Path) -> None:
    program = tmp_path / "simple_http_server.py"
    program.write_text(port(ORIGINAL.read_text()))
    spec = importlib.util.spec_from_file_location(f"ported_{uuid.uuid4().hex}", program)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        # What its __main__ block does, with the GAplic in a thread so that we can call it.
        ga_srv = module.GAplic(name=f"Server-{uuid.uuid4().hex[:6]}", roles="")
        server = ga_srv.create_gobj("server", module.SimpleHttpServer, ga_srv)
        port_number = server.server.config.port
        thread = threading.Thread(target=ga_srv.start, daemon=True)
        thread.start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port_number, timeout=10)
            conn.request("GET", "/anything")
            response = conn.getresponse()
            body = response.read()
            conn.close()
        finally:
            ga_srv.stop()
            thread.join(15)
            ga_srv.close()
    finally:
        sys.modules.pop(spec.name, None)
        # its verbose mode turned every GSock's hexdump on (ginsfsm's class attribute):
        # off again, or every later test would dump all its traffic
        GSock._global_trace_dump = False
    assert response.status == 200
    assert response.reason == "OK"
    assert body == b"Caraculo\r\nCaraculo\r\nCaraculo\r\n"
    assert response.getheader("Content-Type") == "text/plain"
    assert response.getheader("Content-Length") == str(len(body))
    assert response.getheader("Connection") == "close"
