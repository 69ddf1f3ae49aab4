"""Memoised visibility and exports (issue 9): the per-turn tool list costs nothing when nothing
changed, and every change (toolset, policy, identity) is seen at once. Each test tries to make
a stale memo show or run something it must not."""

from __future__ import annotations

from typing import Any

import pytest

from callgate import Gate, Policy, Rule, RunContext, Tool, ToolResult, Toolset, tool
from callgate.dialects.export import export_tools, to_anthropic, to_openai_chat
from callgate.errors import SchemaError
from callgate.testing import call


def make(name: str, description: str = "", **kw: Any) -> Tool:
    def fn(q: str = "") -> str:
        return f"ran {name}"

    return tool(name=name, description=description or f"Tool {name}.", **kw)(fn)


def names(g: Gate, ctx: RunContext) -> list[str]:
    return [s.name for s in g.specs(ctx)]


async def run(g: Gate, name: str, ctx: RunContext) -> ToolResult:
    return await g.execute(call(name, {}), ctx)


class CountingPolicy:
    """Allows everything except the tools in `hidden`; counts `visible` questions."""

    def __init__(self, hidden: set[str] = frozenset(), stable: bool = True) -> None:  # type: ignore[assignment]
        self.hidden = set(hidden)
        self.asked = 0
        self.memoise_visibility = stable

    def visible(self, t: Tool, ctx: RunContext) -> bool:
        self.asked += 1
        return t.name not in self.hidden

    def decide(self, t: Tool, args: dict[str, Any], ctx: RunContext) -> Any:
        from callgate.gate.protocols import PolicyDecision

        return PolicyDecision("allow", "all")


# --- the list is memoised, and every toolset change shows at once ---------------------------


async def test_register_disable_enable_unregister_show_at_once() -> None:
    ts = Toolset([make("a"), make("b")])
    g = Gate(ts, policy=CountingPolicy())
    ctx = RunContext()
    assert names(g, ctx) == ["a", "b"]
    ts.register(make("c"))
    assert names(g, ctx) == ["a", "b", "c"]
    assert (await run(g, "c", ctx)).content == "ran c"
    ts.disable("b")
    assert names(g, ctx) == ["a", "c"]
    assert (await run(g, "b", ctx)).error_kind == "denied"
    ts.enable("b")
    assert names(g, ctx) == ["a", "b", "c"]
    ts.unregister("a")
    assert names(g, ctx) == ["b", "c"]
    assert (await run(g, "a", ctx)).error_kind == "correctable"
    ts.register(make("c", "Now different."), replace=True)
    assert [s.description for s in g.specs(ctx)] == ["Tool b.", "Now different."]


def test_nothing_changed_means_no_visibility_work() -> None:
    policy = CountingPolicy()
    g = Gate(Toolset([make(f"t{i}") for i in range(50)]), policy=policy)
    ctx = RunContext()
    first = g.specs(ctx)
    asked = policy.asked
    assert asked == 50
    for _ in range(20):
        assert g.specs(ctx) == first
    assert policy.asked == asked  # twenty more turns, not one more question


def test_a_caller_editing_the_list_does_not_edit_the_memo() -> None:
    g = Gate(Toolset([make("a"), make("b")]))
    ctx = RunContext()
    g.specs(ctx).clear()
    g.list_tools(ctx).append(make("evil"))
    assert names(g, ctx) == ["a", "b"]
    assert [t.name for t in g.list_tools(ctx)] == ["a", "b"]


def test_identity_is_part_of_the_key() -> None:
    ts = Toolset([make("pub")])
    ts.register(make("admin_only"), roles=["admin"])
    ts.register(make("acme_only"), tenants=["acme"])
    g = Gate(ts, policy=CountingPolicy())
    ctx = RunContext(run_id="run_same")
    assert names(g, ctx) == ["pub"]
    assert names(g, RunContext(run_id="run_same", roles=frozenset({"admin"}))) == [
        "pub",
        "admin_only",
    ]
    assert names(g, RunContext(run_id="run_same", tenant="acme")) == ["pub", "acme_only"]
    assert names(g, RunContext(run_id="run_same", tenant="other")) == ["pub"]
    ctx.roles = {"admin"}  # type: ignore[assignment]  # a plain set assigned later
    assert names(g, ctx) == ["pub", "admin_only"]


def test_toolset_filters_are_asked_every_turn() -> None:
    ts = Toolset([make("a"), make("b")])
    ts.add_filter(lambda t, c: t.name != c.metadata.get("hide"))
    g = Gate(ts)
    ctx = RunContext()
    assert names(g, ctx) == ["a", "b"]
    ctx.metadata["hide"] = "a"
    assert names(g, ctx) == ["b"]


def test_middleware_hooks_are_asked_every_turn() -> None:
    class PerTurn:
        def __init__(self) -> None:
            self.allowed: set[str] | None = None

        def visible(self, t: Tool, ctx: RunContext) -> bool:
            return self.allowed is None or t.name in self.allowed

        async def __call__(self, inv: Any, nxt: Any) -> ToolResult:
            return await nxt(inv)  # type: ignore[no-any-return]

    hook = PerTurn()
    g = Gate(Toolset([make("a"), make("b")]), middleware=[hook])
    ctx = RunContext()
    assert names(g, ctx) == ["a", "b"]
    hook.allowed = {"b"}
    assert names(g, ctx) == ["b"]


# --- call-time visibility: once per run, never letting a hidden tool run ---------------------


async def test_policy_visibility_asked_once_per_run_and_tool() -> None:
    policy = CountingPolicy()
    ts = Toolset([make("a")])
    g = Gate(ts, policy=policy)
    ctx = RunContext()
    for _ in range(5):
        assert (await run(g, "a", ctx)).content == "ran a"
    assert policy.asked == 1
    await run(g, "a", RunContext())  # another run asks again
    assert policy.asked == 2
    ts.register(make("z"))  # a toolset change asks again
    await run(g, "a", ctx)
    assert policy.asked == 3


async def test_a_hidden_tool_stays_refused() -> None:
    policy = CountingPolicy(hidden={"secret"})
    g = Gate(Toolset([make("a"), make("secret")]), policy=policy)
    ctx = RunContext()
    assert names(g, ctx) == ["a"]
    for _ in range(3):
        r = await run(g, "secret", ctx)
        assert r.error_kind == "correctable" and "ran" not in r.content
    # the memo was filled by the calls above; a listing right after must agree
    assert names(g, ctx) == ["a"]


async def test_a_policy_swap_is_seen_at_once() -> None:
    g = Gate(Toolset([make("a"), make("b")]), policy=CountingPolicy())
    ctx = RunContext()
    assert (await run(g, "b", ctx)).content == "ran b"
    assert names(g, ctx) == ["a", "b"]
    g.policy = Policy([Rule("no-b", "deny", tools="b"), Rule("rest", "allow")])
    assert names(g, ctx) == ["a"]
    r = await run(g, "b", ctx)
    assert r.error_kind == "correctable" and r.content != "ran b"
    g.policy = CountingPolicy()
    assert (await run(g, "b", ctx)).content == "ran b"


async def test_an_unstable_engine_is_asked_every_time() -> None:
    policy = CountingPolicy(stable=False)
    g = Gate(Toolset([make("a")]), policy=policy)
    ctx = RunContext()
    assert (await run(g, "a", ctx)).content == "ran a"
    assert (await run(g, "a", ctx)).content == "ran a"
    assert policy.asked == 2  # once per call, not memoised
    assert names(g, ctx) == ["a"]
    policy.hidden.add("a")  # flips within the run: must be honoured at once
    assert names(g, ctx) == []
    assert (await run(g, "a", ctx)).error_kind == "correctable"


async def test_a_cheap_engine_is_asked_per_call_but_lists_stay_memoised() -> None:
    policy = CountingPolicy()
    policy.cheap_visibility = True  # type: ignore[attr-defined]
    g = Gate(Toolset([make("a"), make("b")]), policy=policy)
    ctx = RunContext()
    assert names(g, ctx) == ["a", "b"] and policy.asked == 2
    assert names(g, ctx) == ["a", "b"] and policy.asked == 2  # list memoised
    await run(g, "a", ctx)
    await run(g, "a", ctx)
    assert policy.asked == 4  # asked on each call


# --- dialect exports: memoised per spec, a changed spec is a new export ----------------------


def test_export_is_memoised_per_spec_and_equal_to_a_fresh_one() -> None:
    a, b = make("a"), make("b")
    first = export_tools([a.spec, b.spec], "openai_chat")
    again = export_tools([a.spec, b.spec], "openai_chat")
    assert all(x is y for x, y in zip(first, again, strict=True))  # looked up, not rebuilt
    assert first == [to_openai_chat(a.spec), to_openai_chat(b.spec)]
    assert first[0]["function"]["name"] == "a" and "strict" not in first[0]["function"]
    strict = export_tools([a.spec], "openai_chat", strict=True)[0]
    assert strict["function"]["strict"] is True  # strictness is part of the key
    assert export_tools([a.spec], "anthropic")[0] == to_anthropic(a.spec)
    assert export_tools([a.spec], "anthropic")[0]["name"] == "a"


def test_a_replaced_tool_is_exported_anew() -> None:
    ts = Toolset([make("a", "Old text.")])
    g = Gate(ts)
    ctx = RunContext()
    old = export_tools(g.specs(ctx), "openai_responses")
    ts.register(make("a", "New text."), replace=True)
    new = export_tools(g.specs(ctx), "openai_responses")
    assert old[0]["description"] == "Old text." and new[0]["description"] == "New text."


def test_an_impossible_strict_export_fails_every_time() -> None:
    open_map = Tool.from_schema(
        "m",
        "An open map.",
        {"type": "object", "properties": {"d": {"type": "object", "additionalProperties": True}}},
        lambda d=None: d,
    )
    for _ in range(2):
        with pytest.raises(SchemaError):
            export_tools([open_map.spec], "openai_chat", strict=True)
    assert export_tools([open_map.spec], "openai_chat", strict="auto")[0]["function"].get(
        "strict"
    ) in (None, False)


# --- approvals: a request is built only for a call that has none, and then stored -------------


@tool(destructive=True, sensitive=["card"])
def pay(to: str, amount: int, card: str = "") -> str:
    return f"paid {amount} to {to}"


async def test_an_approved_call_builds_no_request(monkeypatch: pytest.MonkeyPatch) -> None:
    from callgate.approvals import service
    from callgate.approvals.model import args_hash
    from callgate.approvals.stores.memory import MemoryApprovalStore

    built: list[str] = []
    real = service.build_request

    def counting(*a: Any, **kw: Any) -> Any:
        req = real(*a, **kw)
        built.append(req.id)
        return req

    monkeypatch.setattr(service, "build_request", counting)
    approvals = service.Approvals(MemoryApprovalStore())
    g = Gate([pay], policy=Policy([Rule("pay", "approve", tools="pay")]), approver=approvals)
    ctx = RunContext(user_id="u")
    c = call("pay", {"to": "bob", "amount": 5, "card": "4111111111111111"}, id="c1")
    pending = await g.execute(c, ctx)
    assert pending.error_kind == "pending_approval" and built == [pending.approval_id]
    req = approvals.get(str(pending.approval_id))
    # the hash handed in is the hash of exactly these arguments, and the card is masked
    assert req.args_hash == args_hash(
        "pay", None, {"to": "bob", "amount": 5, "card": "4111111111111111"}
    )
    assert "4111111111111111" not in str(req.arguments)
    approvals.approve(req.id, by="admin")
    done = await g.execute(c, ctx)
    assert done.content == "paid 5 to bob" and done.approval_id == req.id
    assert built == [req.id]  # the approved call found its request and built none
    changed = call("pay", {"to": "eve", "amount": 5}, id="c1")  # same call id, other arguments
    assert (await g.execute(changed, ctx)).error_kind == "pending_approval"
    assert len(built) == 2 and approvals.get(built[1]).args_hash != req.args_hash
