"""What a tool may raise and what reaches the caller; timeouts that return on time; secrets
never echoed in validation errors."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import pytest

from callgate import Gate, RunContext, ToolCall, tool


def _gate(fn: Any, **opts: Any) -> Gate:
    return Gate([tool(**opts)(fn)])


def _call(name: str, args: str = "{}") -> ToolCall:
    return ToolCall("c1", name, args)


def argparse_tool(flag: str) -> str:
    """A tool that parses its input the way a CLI would."""
    import argparse

    p = argparse.ArgumentParser(prog="x", exit_on_error=True)
    p.add_argument("--n", type=int)
    p.parse_args([flag])  # "--n=abc" makes argparse call sys.exit(2)
    return "parsed"


@pytest.mark.parametrize("inline", [False, True])
async def test_system_exit_in_a_sync_tool_is_a_terminal_error(
    inline: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    r = await _gate(argparse_tool, inline=inline).execute(
        _call("argparse_tool", '{"flag": "--n=abc"}'), RunContext()
    )
    assert r.error_kind == "terminal" and r.error_class == "SystemExit"
    assert "internal error" in r.content and "invalid int value" not in r.content


async def test_system_exit_in_an_async_tool_is_a_terminal_error() -> None:
    async def quits(code: int) -> str:
        await asyncio.sleep(0)
        sys.exit(code)

    async def quits_at_once(code: int) -> str:
        sys.exit(code)

    for fn in (quits, quits_at_once):
        r = await _gate(fn).execute(_call(fn.__name__, '{"code": 3}'), RunContext())
        assert r.error_kind == "terminal" and r.error_class == "SystemExit"


async def test_generator_exit_raised_by_a_tool_is_a_terminal_error() -> None:
    async def closes(x: int) -> str:
        await asyncio.sleep(0)
        raise GeneratorExit

    def closes_sync(x: int) -> str:
        raise GeneratorExit

    for fn in (closes, closes_sync):
        r = await _gate(fn).execute(_call(fn.__name__, '{"x": 1}'), RunContext())
        assert r.error_kind == "terminal" and r.error_class == "GeneratorExit"


async def test_keyboard_interrupt_in_a_worker_thread_is_a_terminal_error() -> None:
    # signals are delivered to the main thread only: in a worker it is the tool's own raise
    def interrupts(x: int) -> str:
        raise KeyboardInterrupt

    r = await _gate(interrupts).execute(_call("interrupts", '{"x": 1}'), RunContext())
    assert r.error_kind == "terminal" and r.error_class == "KeyboardInterrupt"


async def test_keyboard_interrupt_in_the_loop_thread_propagates() -> None:
    # it may be the process's real interrupt (Ctrl-C lands in the main thread): never swallowed
    async def interrupted(x: int) -> str:
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await _gate(interrupted).execute(_call("interrupted", '{"x": 1}'), RunContext())


async def test_closing_the_gate_coroutine_propagates_generator_exit() -> None:
    # the caller's own close() is not a tool error: the coroutine ends as close() requires
    async def waits(x: int) -> str:
        await asyncio.sleep(10)
        return "late"

    coro = _gate(waits).execute(_call("waits", '{"x": 1}'), RunContext())
    coro.send(None)  # now suspended inside the tool
    coro.close()  # raises RuntimeError if GeneratorExit were swallowed into a result


async def test_cancellation_propagates() -> None:
    async def waits(x: int) -> str:
        await asyncio.sleep(10)
        return "late"

    task = asyncio.ensure_future(_gate(waits).execute(_call("waits", '{"x": 1}'), RunContext()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_execute_sync_returns_at_the_timeout() -> None:
    release = threading.Event()

    def slow(x: int) -> str:
        release.wait(1.0)
        return "done"

    gate = _gate(slow, timeout_s=0.2, idempotent=True, max_retries=0)
    t0 = time.perf_counter()
    r = gate.execute_sync(_call("slow", '{"x": 1}'))
    took = time.perf_counter() - t0
    release.set()
    assert r.error_kind == "transient" and "timed out after 0.2 s" in r.content
    assert took < 0.7, took  # not the tool's full second


def test_timeout_of_a_non_idempotent_tool_says_the_effect_is_unknown() -> None:
    release = threading.Event()

    def slow_write(x: int) -> str:
        release.wait(1.0)
        return "done"

    r = _gate(slow_write, timeout_s=0.1).execute_sync(_call("slow_write", '{"x": 1}'))
    release.set()
    assert r.error_kind == "transient" and r.attempts == 1
    assert "may or may not have taken effect" in r.content
    assert "Check whether it took effect before calling it again." in r.content
    assert "Try again" not in r.content  # one piece of advice, not two


SECRETS = [
    "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2,
    "Bearer abcdef0123456789abcdef",
    "AKIAIOSFODNN7EXAMPLE",
    "AIzaSyA-1234567890abcdefghijklmnopqrstu",  # a Google Cloud API key
    "ya29.a0AfH6SMBx3Qv9KpLm2Rt7Yw4Zn8Jc1Ue5",  # a Google OAuth access token
    "ghp_" + "x1" * 18,
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXBhcnQ",
]


def count_items(count: int, label: str = "") -> int:
    return count


@pytest.mark.parametrize("secret", SECRETS)
async def test_secret_values_under_ordinary_names_are_never_echoed(secret: str) -> None:
    gate = Gate([tool(count_items)])
    for args in (
        {"count": secret},
        {"count": 1, "label": {"nested": secret}},
        {"count": [secret, 2]},
        {"count": "x" * 70 + secret},  # the secret straddles the cut of the shown value
        {"count": 1, secret: 2},  # as an unknown parameter's name
    ):
        import json

        r = await gate.execute(_call("count_items", json.dumps(args)), RunContext())
        assert r.error_kind == "correctable", r.content
        assert secret not in r.content, r.content
        assert secret[8:24] not in r.content, r.content  # no recognisable part either
        assert all(secret not in i.message for i in r.issues)
