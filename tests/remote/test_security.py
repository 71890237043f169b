"""Authentication, per-subject permissions (an unforgeable sender) and nats-config."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsmio.remote import RemoteError
from fsmio.tools.cli import main as fsmio_main
from fsmio.tools.natsconfig import print_nats_config

from .apps import Running, make_app, wait_until
from .natsserver import NatsServer

APP = """\
[gaplic]
name = "{name}"
roles = [{roles}]

[[gobj]]
name = "rec"
gclass = "tests.remote.apps:Recorder"
unique = true

[[gobj]]
name = "router"
gclass = "fsmio.remote:GRemote"
[gobj.config]
servers = ["nats://127.0.0.1:4222"]
user = "{name}"
password = "{name}-secret"
{extra}
"""


def write_apps(tmp_path: Path, extra: str = "") -> list[str]:
    paths = []
    for name, roles in (("alice", ""), ("bob", '"bank"')):
        path = tmp_path / f"{name}.toml"
        path.write_text(APP.format(name=name, roles=roles, extra=extra))
        paths.append(str(path))
    return paths


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NatsServer]:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    out = io.StringIO()
    assert print_nats_config(write_apps(tmp_path), out) == 0
    server = NatsServer(config=out.getvalue())
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_nats_config_prints_one_user_per_gaplic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    assert fsmio_main(["nats-config", *write_apps(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("authorization {")
    assert '"user": "bob"' in text and '"password": "bob-secret"' in text
    assert '"fsmio.ev.*.bob.>"' in text and '"fsmio.role.bank.>"' in text
    assert '"allow_responses": true' in text


def test_nats_config_without_a_gremote_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plain.toml"
    path.write_text('[gaplic]\nname = "plain"\n')
    assert fsmio_main(["nats-config", str(path)]) == 2
    assert "expected one [[gobj]] of gclass fsmio.remote:GRemote" in capsys.readouterr().err


def _app(server: NatsServer, name: str, user: str, password: str, **kw: Any) -> Any:
    roles = ("bank",) if name == "bob" else ()
    return make_app(name, server.url, roles, user=user, password=password, **kw)


@pytest.mark.slow
def test_authenticated_peers_talk_and_a_forged_sender_is_refused(secured: NatsServer) -> None:
    apps = [
        _app(secured, "alice", "alice", "alice-secret"),
        _app(secured, "bob", "bob", "bob-secret"),
        # mallory has alice's credentials but calls itself mallory: every subject it would
        # publish names mallory as the sender, which alice's user may not publish.
        _app(secured, "mallory", "alice", "alice-secret"),
    ]
    running = [Running(gaplic) for gaplic, _, _ in apps]
    (_, alice_rec, _), (_, bob_rec, _), (_, mallory_rec, _) = apps
    try:
        wait_until(lambda: all(rec.named("EV_REMOTE_CONNECTED") for _, rec, _ in apps))
        alice, _, mallory = running
        alice.call(
            lambda: alice.gaplic.send_event_outside(
                "", "bank", "rec", "EV_PING", "rec", n=1, __subscribe_response__=True
            )
        )
        wait_until(lambda: alice_rec.named("EV_PING"), what="alice's answer")
        assert alice_rec.named("EV_PING")[0]["__action_return__"]["by"] == "bob"
        mallory.call(
            lambda: mallory.gaplic.send_event_outside("bob", "", "rec", "EV_PING", "rec", n=666)
        )
        wait_until(
            lambda: any(
                kw["reason"] == "permission" and "publish" in kw["message"].lower()
                for kw in mallory_rec.named("EV_REMOTE_ERROR")
            ),
            what="mallory told of the refused publish",
        )
        time.sleep(0.2)
        assert [kw["n"] for kw in bob_rec.named("EV_PING")] == [1]
    finally:
        for run in running:
            run.stop()


def test_bad_password_closes_at_once_with_the_reason(secured: NatsServer) -> None:
    gaplic, rec, _ = _app(secured, "alice", "alice", "wrong")
    running = Running(gaplic)
    try:
        started = time.monotonic()
        wait_until(lambda: rec.named("EV_REMOTE_CLOSED"), what="closed")
        assert rec.named("EV_REMOTE_CLOSED")[0]["reason"].startswith("auth")
        assert time.monotonic() - started < 3.0
    finally:
        running.stop()


@pytest.mark.slow
def test_durable_events_under_the_generated_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    out = io.StringIO()
    assert print_nats_config(write_apps(tmp_path, extra="durable = true"), out) == 0
    assert "$JS.API.CONSUMER.MSG.NEXT.FSMIO.fsmio_bob" in out.getvalue()
    server = NatsServer(config=out.getvalue(), jetstream=True)
    try:
        server.start()
        durable = {"durable": True, "durable_retry_delay": 0.1}
        apps = [
            _app(server, "alice", "alice", "alice-secret", **durable),
            _app(server, "bob", "bob", "bob-secret", **durable),
        ]
        running = [Running(gaplic) for gaplic, _, _ in apps]
        (_, _, alice_router), (_, bob_rec, _) = apps
        try:
            wait_until(lambda: all(rec.named("EV_REMOTE_CONNECTED") for _, rec, _ in apps))
            alice = running[0]
            alice.call(
                lambda: alice.gaplic.send_event_outside(
                    "bob", "", "rec", "EV_DATA", "rec", n=0, __durable__=True
                )
            )
            wait_until(lambda: bob_rec.count == 1, what="durable event under permissions")
            # JetStream's publish ack may reach alice after bob got the event
            wait_until(lambda: alice_router.durable.stored == 1, what="publish acknowledged")
            assert bob_rec.named("EV_REMOTE_ERROR") == []
        finally:
            for run in running:
                run.stop()
    finally:
        server.close()


NKEY_APP = """\
[gaplic]
name = "{name}"

[[gobj]]
name = "rec"
gclass = "tests.remote.apps:Recorder"
unique = true

[[gobj]]
name = "router"
gclass = "fsmio.remote:GRemote"

[gobj.config]
nkeys_seed = "{name}.nk"
"""


def test_nkeys_authentication_with_the_generated_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import nkeys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    paths = []
    for name in ("alice", "bob", "stranger"):
        (tmp_path / f"{name}.nk").write_bytes(
            nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
        )
        (tmp_path / f"{name}.toml").write_text(NKEY_APP.format(name=name))
        paths.append(str(tmp_path / f"{name}.toml"))
    out = io.StringIO()
    assert print_nats_config(paths[:2], out) == 0  # the stranger is not in the block
    assert '"nkey": "U' in out.getvalue() and "password" not in out.getvalue()
    server = NatsServer(config=out.getvalue())
    try:
        server.start()
        seeds = {name: str(tmp_path / f"{name}.nk") for name in ("alice", "bob", "stranger")}
        apps = [make_app(name, server.url, nkeys_seed=seeds[name]) for name in ("alice", "bob")]
        stranger = make_app("stranger", server.url, nkeys_seed=seeds["stranger"])
        running = [Running(app[0]) for app in (*apps, stranger)]
        try:
            wait_until(lambda: all(app[1].named("EV_REMOTE_CONNECTED") for app in apps))
            alice = running[0]
            alice.call(
                lambda: alice.gaplic.send_event_outside(
                    "bob", "", "rec", "EV_PING", "rec", n=1, __subscribe_response__=True
                )
            )
            wait_until(lambda: apps[0][1].named("EV_PING"), what="answer over nkeys")
            assert apps[0][1].named("EV_PING")[0]["__action_return__"]["by"] == "bob"
            wait_until(lambda: stranger[1].named("EV_REMOTE_CLOSED"), what="stranger refused")
            assert stranger[1].named("EV_REMOTE_CLOSED")[0]["reason"].startswith("auth")
        finally:
            for run in running:
                run.stop()
    finally:
        server.close()


def test_peers_fail_fast_locally_and_narrow_the_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    paths = write_apps(tmp_path, extra='peers = ["bank"]')
    out = io.StringIO()
    assert print_nats_config(paths[:1], out) == 0  # alice, who may talk to the bank only
    block = out.getvalue()
    assert '"fsmio.role.bank.alice.>"' in block and '"fsmio.ev.*.alice.>"' not in block
    assert '"fsmio.pub.bank.>"' in block and '"fsmio.pub.>"' not in block
    server = NatsServer()
    try:
        server.start()
        gaplic, rec, _ = make_app("alice", server.url, peers=["bank"])
        running = Running(gaplic)
        try:
            wait_until(lambda: rec.named("EV_REMOTE_CONNECTED"))
            with pytest.raises(RemoteError, match="not one of this GAplic's peers"):
                running.call(
                    lambda: gaplic.send_event_outside("carol", "", "rec", "EV_PING", "rec")
                )
            # A peer is fine (no one listens: a plain event is simply dropped).
            assert running.call(
                lambda: gaplic.send_event_outside("", "bank", "rec", "EV_PING", "rec")
            )
        finally:
            running.stop()
    finally:
        server.close()
