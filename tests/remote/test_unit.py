"""Pure parts of the remote layer: subjects, payloads, the synchronous publish runner."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsmio.remote import RemoteNameError, Subjects
from fsmio.remote.c_remote import _decode, _encode_kw, _run_now
from fsmio.remote.natsconf import NatsIdentity, authorization_block
from fsmio.remote.subjects import TOKEN_RE

tokens = st.from_regex(TOKEN_RE, fullmatch=True)


@given(tokens, tokens, tokens, tokens)
def test_subjects_round_trip(me: str, dst: str, gobj: str, event: str) -> None:
    subjects = Subjects("fsmio.test", me)
    parsed = subjects.parse_event(subjects.to_gaplic(dst, gobj, event))
    assert parsed is not None
    assert (parsed.kind, parsed.target, parsed.src_gaplic, parsed.gobj, parsed.event) == (
        "ev",
        dst,
        me,
        gobj,
        event,
    )
    parsed = subjects.parse_event(subjects.to_role(dst, gobj, event))
    assert parsed is not None and parsed.kind == "role"
    assert subjects.parse_broadcast(Subjects("fsmio.test", dst).my_broadcast(gobj, event)) == (
        dst,
        gobj,
        event,
    )


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "*", ">", "é", "a\tb", "x>y"])
def test_a_name_that_is_not_one_token_is_refused(bad: str) -> None:
    with pytest.raises(RemoteNameError, match="expected letters, digits"):
        Subjects("fsmio", bad)


def test_foreign_subjects_are_not_parsed() -> None:
    subjects = Subjects("fsmio", "me")
    assert subjects.parse_event("fsmio.ev.me.src.gobj") is None  # too short
    assert subjects.parse_event("fsmio.xx.me.src.gobj.EV") is None  # unknown kind
    assert subjects.parse_broadcast("fsmio.ev.a.b.c") is None


@given(
    st.dictionaries(
        st.text().filter(lambda k: not (k.startswith("__") and k.endswith("__"))),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=10,
        ),
        max_size=5,
    )
)
def test_payload_round_trip(kw: dict[str, Any]) -> None:
    body = {**kw, "__gobj__": "rec", "__role__": "bank"}
    assert _decode(_encode_kw("EV_X", body)) == (kw, "rec", "bank")


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe", b"[]", b"1", b'{"__class__": 1}', b'{"__gobj__": 5}', b"[" * 50_000],
)
def test_hostile_payloads_are_value_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        _decode(data)


def test_run_now_returns_at_once_or_finishes_in_a_task() -> None:
    async def main() -> None:
        tasks: list[asyncio.Task[Any]] = []

        class Owner:
            def _spawn(self, coro: Any) -> asyncio.Task[Any]:
                task = asyncio.get_running_loop().create_task(coro)
                tasks.append(task)
                return task

        async def immediate() -> int:
            return 4

        steps: list[str] = []

        async def suspending() -> int:
            steps.append("start")
            await asyncio.sleep(0)
            steps.append("end")
            return 5

        assert _run_now(Owner(), immediate()) == 4  # type: ignore[arg-type]
        assert _run_now(Owner(), suspending()) is None  # type: ignore[arg-type]
        assert steps == ["start"]
        assert await tasks[0] == 5
        assert steps == ["start", "end"]

    asyncio.run(main())


def test_authorization_block_refuses_a_gaplic_twice() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        authorization_block([NatsIdentity("a"), NatsIdentity("a")])
