"""Memoised list-time visibility: what a run may see, computed once per run, not once per call.

The gate asks two visibility questions: at list time (every model turn) "which tools may this run
see?", and at call time (every call) "may this run see the tool it named?". Both depend on the
toolset (which changes only through its own methods, each bumping `Toolset.generation`), the
policy engine (replaced, not edited, to change it) and the run's identity (run, user, tenant,
roles). So the answers are memoised under exactly those inputs:

- a toolset change (register, unregister, enable, disable, new default, deprecate, a filter) bumps
  the generation, so every memoised answer of the old generation is simply never looked at again;
- assigning another policy engine or toolset to the gate drops the memo;
- a change of the run's identity (another run, user, tenant or role set) is another key.

What is *not* memoised, because it may change from one turn to the next: middleware `visible`
hooks (a router picks tools per turn) and toolset filters (arbitrary code over the whole context).

Why this is safe: call-time visibility only ever narrows what runs. A memoised "hidden" keeps a
tool refused for the run; a memoised "visible" still goes through `PolicyEngine.decide` on every
call, with the arguments, and the toolset's own checks (enabled, tenant, role, filters) run on
every call too. Two class attributes of an engine adjust this:

- ``memoise_visibility = False``: its `visible` answer may change within one run for the same
  identity (a clock, a feature flag), so nothing is memoised; the gate asks it every time;
- ``cheap_visibility = True``: asking costs less than a lookup (`DefaultPolicy`, whose answer
  is always True), so calls ask it directly; the run's tool list is still memoised.
"""

from __future__ import annotations

from typing import Any

from callgate.context import RunContext
from callgate.gate.protocols import PolicyEngine
from callgate.tools.definition import Tool, ToolSpec
from callgate.tools.toolset import Toolset

#: beyond this many memoised answers the memo starts afresh (a long-lived gate serving many runs
#: must not grow without bound; one run needs one entry per tool it touches)
MAX_CALL_ENTRIES = 50_000
#: memoised tool lists (one per run identity); each holds references, not copies, of the tools
MAX_LIST_ENTRIES = 256

_Key = tuple[Any, ...]


class VisibilityMemo:
    """Per-gate memo of policy visibility and of the run's visible tool list."""

    __slots__ = ("_ask", "_calls", "_lists", "_memoise", "_policy", "_toolset")

    def __init__(self) -> None:
        self._policy: PolicyEngine | None = None
        self._toolset: Toolset | None = None
        self._memoise = True
        self._ask = False  # ask the engine at call time instead of looking up
        self._calls: dict[_Key, bool] = {}
        self._lists: dict[_Key, tuple[tuple[Tool, ...], tuple[ToolSpec, ...]]] = {}

    def _current(self, policy: PolicyEngine, toolset: Toolset) -> None:
        """Forget everything when the gate was given another engine or toolset."""
        if policy is not self._policy or toolset is not self._toolset:
            self._calls.clear()
            self._lists.clear()
            self._policy = policy
            self._toolset = toolset
            self._memoise = bool(getattr(policy, "memoise_visibility", True))
            self._ask = not self._memoise or bool(getattr(policy, "cheap_visibility", False))

    def policy_sees(
        self, policy: PolicyEngine, toolset: Toolset, tool: Tool, ctx: RunContext[Any]
    ) -> bool:
        """`policy.visible(tool, ctx)`, asked once per (run identity, tool, toolset generation).
        On the hot path of every call, so the key is built inline: the `Tool` object itself
        (hashed by identity; a replaced tool is another object, and a change bumps the
        generation anyway) and the identity fields."""
        if policy is not self._policy or toolset is not self._toolset:
            self._current(policy, toolset)
        if self._ask:
            return bool(policy.visible(tool, ctx))
        roles = ctx.roles
        if roles.__class__ is not frozenset:
            roles = frozenset(roles)
        key = (toolset.generation, tool, ctx.run_id, ctx.user_id, ctx.tenant, roles)
        calls = self._calls
        hit = calls.get(key)
        if hit is None:
            hit = bool(policy.visible(tool, ctx))
            if len(calls) >= MAX_CALL_ENTRIES:
                calls.clear()
            calls[key] = hit
        return hit

    def listed(
        self, policy: PolicyEngine, toolset: Toolset, ctx: RunContext[Any]
    ) -> tuple[tuple[Tool, ...], tuple[ToolSpec, ...]]:
        """The tools (and their specs) the toolset shows this run and the policy lets it see,
        in registration order. Memoised unless the toolset has filters or the engine's
        visibility is not stable."""
        self._current(policy, toolset)
        if toolset.filtered or not self._memoise:
            return _split(
                [t for t in toolset.visible(ctx) if self.policy_sees(policy, toolset, t, ctx)]
            )
        key = (toolset.generation, *_identity(ctx))
        hit = self._lists.get(key)
        if hit is None:
            hit = _split(
                [t for t in toolset.visible(ctx) if self.policy_sees(policy, toolset, t, ctx)]
            )
            if len(self._lists) >= MAX_LIST_ENTRIES:
                self._lists.pop(next(iter(self._lists)))  # the oldest run's list
            self._lists[key] = hit
        return hit


def _identity(ctx: RunContext[Any]) -> tuple[Any, ...]:
    """The context fields visibility may depend on. Roles are normally a frozenset; a set
    assigned after construction is frozen here so it can be part of a key."""
    roles = ctx.roles
    if roles.__class__ is not frozenset:
        roles = frozenset(roles)
    return (ctx.run_id, ctx.user_id, ctx.tenant, roles)


def _split(tools: list[Tool]) -> tuple[tuple[Tool, ...], tuple[ToolSpec, ...]]:
    return tuple(tools), tuple(t.spec for t in tools)
