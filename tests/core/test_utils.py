"""ginsfsm's small helpers: bytes_, text_, random_key and the URL helpers."""

from __future__ import annotations

import logging
import re

import pytest

from fsmio import bytes_, get_host_port_from_urls, get_path_from_url, random_key, text_


def test_bytes_and_text() -> None:
    assert bytes_("GET / é") == b"GET / \xe9"  # latin-1, as ginsfsm
    assert bytes_("é", "utf-8") == b"\xc3\xa9"
    assert bytes_(b"x") == b"x"
    data = bytearray(b"y")
    assert bytes_(data) is data  # not a str: as it is
    assert text_(b"\xe9") == "é"
    assert text_(b"\xc3\xa9", "utf-8") == "é"
    assert text_("already") == "already"
    with pytest.raises(UnicodeEncodeError):
        bytes_("€")  # not latin-1: strict, as ginsfsm


def test_random_key() -> None:
    keys = {random_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key in keys)


def test_get_path_from_url() -> None:
    assert get_path_from_url("ws://host:8000/a/b?x=1") == "/a/b"
    assert get_path_from_url("http://host") == ""


def test_get_host_port_from_urls(caplog: pytest.LogCaptureFixture) -> None:
    urls = [
        "http://a.example/x",
        "https://b.example",
        "ws://c.example:81",
        "wss://[::1]/",
        "other://d.example",
        "no-scheme",
        "http://bad:port",
    ]
    with caplog.at_level(logging.WARNING, logger="fsmio"):
        routes = get_host_port_from_urls(urls)
    assert routes == [
        ("a.example", 80),
        ("b.example", 443),
        ("c.example", 81),
        ("::1", 443),
        ("d.example", 80),
    ]
    assert "no host in URL 'no-scheme'" in caplog.text
    assert "bad port in URL 'http://bad:port'" in caplog.text
