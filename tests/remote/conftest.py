"""Fixtures of the remote-event tests: a real nats-server of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .natsserver import NatsServer


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
