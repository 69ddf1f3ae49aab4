"""Tools that fail with secrets in their exceptions: the model-facing text never carries them.

Any exception that is not a `ToolError` is a crash: the model is told the tool failed and
nothing more, so neither the message, nor a file path, nor a stack trace, nor a chained cause
may reach it (README: "No stack traces, paths or secrets reach the model"). A `ToolError`'s
`message` is written for the model on purpose, but a key, token or password inside it is still
masked by the same detector as everything else, and its `detail` never reaches the model.

Every failure mode is tried in the three ways a tool can run: async, sync on a worker thread and
sync inline on the event loop.
"""

from __future__ import annotations

import asyncio
import random
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from callgate import Gate
from callgate.context import RunContext
from callgate.errors import TerminalToolError, ToolDenied, ToolRetry, TransientToolError
from callgate.messages import ToolCall, ToolResult
from callgate.tools.definition import ExecutionOptions, Tool

RNG = random.Random(8_13)
PATHS = ("/home/deploy/.ssh/id_rsa", "/srv/app/config/settings_prod.py", "C:\\Users\\ops\\keys.pem")
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "', "line 42, in")


def _core() -> str:
    return "".join(RNG.choices(string.ascii_letters + string.digits, k=24))


@dataclass(frozen=True, slots=True)
class Leak:
    """A secret planted in an exception and the texts that must not come back."""

    text: str  # what is put into the exception
    forbidden: tuple[str, ...]  # none of these may appear in the result content


def _secrets() -> list[Leak]:
    out = []
    for _ in range(3):
        c = _core()
        out += [
            Leak(f"invalid api key sk-proj-{c}", (c[:12], c[-12:])),
            Leak(f"connect postgresql://admin:{c}@db.internal:5432/prod failed", (c[:12],)),
            Leak(f"password={c} rejected", (c[:12],)),
            Leak(f"Authorization: Bearer {c}7", (c[:12],)),
            Leak(f"token ghp_{c}{c[:12]} expired", (c[:12],)),
        ]
    return out


SECRETS = _secrets()
PATH_LEAKS = [Leak(f"cannot open {p}", (p, p.rsplit("/", 1)[-1])) for p in PATHS]
TRACE = Leak(
    'Traceback (most recent call last):\n  File "/srv/app/db.py", line 42, in connect\n'
    "    raise OSError(password)",
    (*TRACE_MARKERS, "/srv/app/db.py"),
)


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


def _chained(text: str) -> BaseException:
    try:
        raise ValueError(text)
    except ValueError as inner:
        outer = RuntimeError("wrapper")
        outer.__cause__ = inner
        return outer


#: how a crashing tool may fail; each takes the planted text
CRASHES: dict[str, Callable[[str], BaseException]] = {
    "ValueError": ValueError,
    "RuntimeError": RuntimeError,
    "KeyError": KeyError,
    "OSError": lambda t: OSError(2, t, PATHS[0]),
    "ConnectionError": ConnectionError,
    "chained": _chained,
    "group": lambda t: ExceptionGroup("several", [ValueError(t), KeyError(t)]),
    "unprintable": lambda t: _Unprintable(t),
    "SystemExit": SystemExit,
    "AssertionError": AssertionError,
    "RecursionError": RecursionError,
    "MemoryError": MemoryError,
}

#: ToolErrors: the message is written for the model, the detail is never shown (secrets in the
#: message itself: see test_found.py)
TOOL_ERRORS: dict[str, Callable[[str, str], BaseException]] = {
    "ToolRetry": lambda m, d: ToolRetry(m, detail=d),
    "TransientToolError": lambda m, d: TransientToolError(m, detail=d),
    "ToolDenied": lambda m, d: ToolDenied(m, detail=d),
    "TerminalToolError": lambda m, d: TerminalToolError(m, detail=d),
}

MODES = ("async", "thread", "inline")


def _tool(name: str, exc: BaseException, mode: str) -> Tool:
    opts = ExecutionOptions(max_retries=0, inline=mode == "inline", timeout_s=5.0)
    if mode == "async":

        async def fail_async() -> str:
            raise exc

        return Tool.from_function(fail_async, name=name, options=opts)

    def fail_sync() -> str:
        raise exc

    return Tool.from_function(fail_sync, name=name, options=opts)


def _run(tool: Tool) -> ToolResult:
    async def go() -> ToolResult:
        return await Gate([tool]).execute(ToolCall("call-1", tool.name, "{}"), RunContext())

    return asyncio.run(go())


def _assert_clean(res: ToolResult, forbidden: tuple[str, ...]) -> None:
    assert res.call_id == "call-1"
    assert res.is_error
    for f in forbidden:
        assert f not in res.content, f"{f!r} reached the model: {res.content!r}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("crash", sorted(CRASHES))
def test_crash_reveals_nothing(crash: str, mode: str) -> None:
    for leak in [*SECRETS, *PATH_LEAKS, TRACE]:
        res = _run(_tool(f"t_{crash.lower()}", CRASHES[crash](leak.text), mode))
        assert res.error_kind == "terminal", res.content
        _assert_clean(res, leak.forbidden)
        assert "internal error" in res.content


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", sorted(TOOL_ERRORS))
def test_tool_error_detail_is_never_shown(kind: str, mode: str) -> None:
    for leak in SECRETS[:5]:
        detail = f"{leak.text} detail-only {_core()}"
        exc = TOOL_ERRORS[kind]("the upstream refused the request.", detail)
        res = _run(_tool(f"t_{kind.lower()}", exc, mode))
        _assert_clean(res, (*leak.forbidden, detail[-12:], "detail-only"))
        assert "the upstream refused" in res.content  # the message itself is for the model


def test_crash_message_is_not_shown_even_without_secrets() -> None:
    """The control: an ordinary crash message is withheld too, so the checks above do not pass
    merely because secrets look special."""
    res = _run(_tool("plain_crash", ValueError("row 17 of table orders is locked"), "async"))
    assert res.error_kind == "terminal"
    assert "row 17" not in res.content and "orders" not in res.content


def test_keyboard_interrupt_in_a_tool_is_not_swallowed_silently() -> None:
    """A real interrupt of the process may propagate; if the gate contains it instead, the
    result is a terminal error that reveals nothing. Either way nothing hangs or leaks."""
    leak = SECRETS[0]
    try:
        res = _run(_tool("interrupted", KeyboardInterrupt(leak.text), "async"))
    except KeyboardInterrupt:
        return
    assert res.error_kind == "terminal"
    _assert_clean(res, leak.forbidden)


def test_tool_output_is_not_an_exception_channel() -> None:
    """Sanity: a tool that returns text normally is shown as is (the checks above are about
    failures, not about what a tool chooses to return)."""

    async def fine() -> str:
        return "all good"

    res = _run(Tool.from_function(fine, name="fine"))
    assert res.content == "all good" and not res.is_error


def test_secret_exit_code_is_not_shown() -> None:
    res = _run(
        _tool("exit_code", SystemExit(f"exit: password={SECRETS[1].forbidden[0]}"), "thread")
    )
    assert res.error_kind == "terminal"
    assert SECRETS[1].forbidden[0] not in res.content
    assert sys.exc_info() == (None, None, None)
