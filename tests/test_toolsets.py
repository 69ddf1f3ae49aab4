"""Toolsets: run-time registration and switches, versions, namespaces, context filters."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from callgate import Gate, Invocation, RunContext, SchemaError, Tool, ToolResult, Toolset, tool
from callgate.agent.loop import Agent
from callgate.testing import FunctionModel, call
from callgate.tools.toolset import version_key

LOG: list[str] = []


def make(name: str, version: str | None = None, **kw: Any) -> Tool:
    def fn(q: str = "") -> str:
        LOG.append(f"{name}@{version}")
        return f"{name}@{version}"

    return tool(name=name, version=version, **kw)(fn)


@pytest.fixture(autouse=True)
def _clear() -> None:
    LOG.clear()


def names(g: Gate | Toolset, ctx: RunContext | None = None) -> list[str]:
    c = ctx or RunContext()
    tools = g.list_tools(c) if isinstance(g, Gate) else g.visible(c)
    return sorted(t.name for t in tools)


async def run(g: Gate, name: str, ctx: RunContext | None = None) -> ToolResult:
    return await g.execute(call(name, {}), ctx or RunContext())


# --- registration ---------------------------------------------------------------------------


async def test_register_and_unregister_at_run_time() -> None:
    ts = Toolset([make("a")])
    g = Gate(ts)
    assert names(g) == ["a"]
    assert (await run(g, "b")).error_kind == "correctable"
    ts.register(make("b"))
    assert names(g) == ["a", "b"]
    assert (await run(g, "b")).content == "b@None"
    ts.unregister("a")
    assert names(g) == ["b"]
    r = await run(g, "a")
    assert "there is no tool named 'a'" in r.content
    with pytest.raises(KeyError):
        ts.unregister("a")


def test_duplicate_registration_is_refused_unless_replace() -> None:
    ts = Toolset([make("a")])
    with pytest.raises(SchemaError, match="already registered"):
        ts.register(make("a"))
    new = make("a")
    ts.register(new, replace=True)
    assert ts.get("a") is new


def test_generation_changes_on_every_change() -> None:
    ts = Toolset()
    seen = [ts.generation]
    ts.register(make("a"))
    seen.append(ts.generation)
    ts.disable("a")
    seen.append(ts.generation)
    ts.enable("a")
    seen.append(ts.generation)
    ts.unregister("a")
    seen.append(ts.generation)
    assert len(set(seen)) == len(seen)


# --- enable / disable -----------------------------------------------------------------------


async def test_disable_and_enable_take_effect_on_the_next_call() -> None:
    ts = Toolset([make("pay_card"), make("pay_bank"), make("search")])
    g = Gate(ts)
    assert ts.disable("pay_*", note="Payments paused.") == ["pay_card", "pay_bank"]
    assert names(g) == ["search"]
    r = await run(g, "pay_card")
    assert r.error_kind == "denied" and "Payments paused." in r.content
    assert LOG == []
    ts.enable("pay_card")
    assert names(g) == ["pay_card", "search"]
    assert (await run(g, "pay_card")).error_kind is None
    assert (await run(g, "pay_bank")).error_kind == "denied"


async def test_disable_applies_to_calls_already_proposed() -> None:
    ts = Toolset([make("a"), make("b")])
    g = Gate(ts)
    proposed = [call("a", {}, id="1"), call("b", {}, id="2")]
    ts.disable("b")
    rs = await g.execute_many(proposed, RunContext())
    assert [r.error_kind for r in rs] == [None, "denied"]
    assert LOG == ["a@None"]


async def test_disable_between_model_reply_and_execution() -> None:
    ts = Toolset([make("transfer"), make("balance")])

    def model(req: Any) -> Any:
        if len(req.messages) == 1:
            ts.disable("transfer", note="Transfers are frozen.")  # operator reacts mid-turn
            return [call("transfer", {}, id="t1"), call("balance", {}, id="b1")]
        return "done"

    m = FunctionModel(model)
    result = await Agent(m, ts).run("move money")
    assert result.status == "completed"
    by_id = {r.call_id: r for r in result.results}
    assert by_id["t1"].error_kind == "denied" and "Transfers are frozen." in by_id["t1"].content
    assert by_id["b1"].error_kind is None
    assert LOG == ["balance@None"]
    # the first request showed the tool; the second no longer does
    assert [s.name for s in m.requests[0].tools] == ["transfer", "balance"]
    assert [s.name for s in m.requests[1].tools] == ["balance"]


# --- versions -------------------------------------------------------------------------------


async def test_versions_side_by_side() -> None:
    ts = Toolset()
    ts.register(make("quote", "1"))
    ts.register(make("quote", "2"), default=False)
    g = Gate(ts)
    assert ts.versions("quote") == ["1", "2"]
    assert [t.version for t in g.list_tools(RunContext())] == ["1"]
    assert (await run(g, "quote")).content == "quote@1"
    assert (await run(g, "quote@2")).content == "quote@2"
    assert (await run(g, "quote@1")).content == "quote@1"
    r = await run(g, "quote@3")
    assert "there is no tool named 'quote@3'" in r.content
    ts.set_default_version("quote", "2")
    assert (await run(g, "quote")).content == "quote@2"
    with pytest.raises(KeyError):
        ts.set_default_version("quote", "9")


async def test_deprecated_version_still_runs_and_is_flagged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ts = Toolset([make("quote", "1"), make("quote", "2")])
    ts.deprecate("quote", "1", "use quote@2; v1 goes away in June")
    g = Gate(ts)
    with caplog.at_level(logging.WARNING, logger="callgate"):
        r = await run(g, "quote@1")
    assert r.content == "quote@1"
    assert r.deprecated == "use quote@2; v1 goes away in June"
    assert "deprecated" in caplog.text
    assert (await run(g, "quote")).deprecated is None


def test_unregistering_the_default_version_picks_the_newest() -> None:
    ts = Toolset([make("q", "2"), make("q", "10"), make("q", "9")])
    ts.set_default_version("q", "2")
    ts.unregister("q", "2")
    assert ts.get("q").version == "10"
    assert ts.versions("q") == ["9", "10"]
    ts.unregister("q", "9")
    ts.unregister("q", "10")
    assert "q" not in ts


def test_version_key_is_natural() -> None:
    vs = ["1.10", "1.9", "2", "10", "1.2.3", "1.2"]
    assert sorted(vs, key=version_key) == ["1.2", "1.2.3", "1.9", "1.10", "2", "10"]


# --- namespaces -----------------------------------------------------------------------------


async def test_namespace_and_prefixes() -> None:
    gh = Toolset([make("search"), make("issue")], namespace="gh")
    assert sorted(gh.names()) == ["gh_issue", "gh_search"]
    jira = Toolset([make("search")]).prefixed("jira")
    both = Toolset.combine(gh, jira)
    g = Gate(both)
    assert names(g) == ["gh_issue", "gh_search", "jira_search"]
    assert (await run(g, "jira_search")).content == "search@None"
    r = await run(g, "search")
    assert "Did you mean" in r.content and "gh_search" in r.content


def test_combine_refuses_clashing_names() -> None:
    with pytest.raises(SchemaError, match="defined twice"):
        Toolset.combine([make("a")], Toolset([make("a")]))


def test_bad_prefix_is_refused() -> None:
    with pytest.raises(SchemaError):
        Toolset([make("a")]).prefixed("bad prefix")


# --- filtering by run context ---------------------------------------------------------------


async def test_per_tenant_tools() -> None:
    ts = Toolset([make("common")])
    ts.register(make("acme_report"), tenants=["acme"])
    ts.register(make("globex_export"), tenants=["globex", "initech"])
    g = Gate(ts)
    acme, globex, none = RunContext(tenant="acme"), RunContext(tenant="globex"), RunContext()
    assert names(g, acme) == ["acme_report", "common"]
    assert names(g, globex) == ["common", "globex_export"]
    assert names(g, none) == ["common"]
    # hidden is unknown, even when called by its exact name
    r = await run(g, "acme_report", globex)
    assert r.error_kind == "correctable" and "there is no tool named 'acme_report'" in r.content
    assert "acme_report" not in r.content.split("Available tools:")[1]
    assert (await run(g, "acme_report", acme)).error_kind is None
    assert LOG == ["acme_report@None"]


async def test_role_scoped_tools() -> None:
    ts = Toolset([make("read")])
    ts.register(make("admin_reset"), roles=["admin", "ops"])
    g = Gate(ts)
    assert names(g, RunContext(roles=frozenset({"viewer"}))) == ["read"]
    assert names(g, RunContext(roles=frozenset({"ops"}))) == ["admin_reset", "read"]
    r = await run(g, "admin_reset", RunContext(roles=frozenset({"viewer"})))
    assert "no tool named" in r.content
    assert LOG == []


async def test_filters_by_user_and_turn() -> None:
    ts = Toolset([make("a"), make("late")])
    ts.add_filter(lambda t, ctx: ctx.user_id != "mallory")
    ts.add_filter(lambda t, ctx: t.name != "late" or ctx.turn >= 2)
    g = Gate(ts)
    assert names(g, RunContext(user_id="mallory")) == []
    assert names(g, RunContext(user_id="bob", turn=0)) == ["a"]
    assert names(g, RunContext(user_id="bob", turn=2)) == ["a", "late"]
    r = await run(g, "late", RunContext(user_id="bob", turn=1))
    assert "no tool named 'late'" in r.content
    r = await run(g, "late@1", RunContext(user_id="bob", turn=1))
    assert "no tool named" in r.content
    assert LOG == []


async def test_pinned_version_obeys_tenant_filters() -> None:
    ts = Toolset()
    ts.register(make("x", "1"), tenants=["acme"])
    ts.register(make("x", "2"), default=False)
    g = Gate(ts)
    r = await run(g, "x@2", RunContext(tenant="globex"))
    assert "no tool named" in r.content


async def test_tools_hidden_by_middleware_or_policy_are_unknown_at_call_time() -> None:
    class HideSecret:
        def visible(self, t: Tool, ctx: RunContext) -> bool:
            return t.name != "secret"

        async def __call__(self, inv: Invocation, next: Any) -> ToolResult:
            r: ToolResult = await next(inv)
            return r

    class HideForGuests:
        def decide(self, t: Tool, args: dict[str, Any], ctx: RunContext) -> Any:
            from callgate import PolicyDecision

            return PolicyDecision("allow", "all")

        def visible(self, t: Tool, ctx: RunContext) -> bool:
            return t.name != "admin" or ctx.has_role("admin")

    g = Gate(
        Toolset([make("open"), make("secret"), make("admin")]),
        middleware=[HideSecret()],
        policy=HideForGuests(),
    )
    assert names(g) == ["open"]
    for n in ("secret", "admin"):
        r = await run(g, n)
        assert r.error_kind == "correctable" and f"no tool named '{n}'" in r.content
    assert LOG == []
    assert (await run(g, "admin", RunContext(roles=frozenset({"admin"})))).error_kind is None


# --- registration at scale -------------------------------------------------------------------


def test_registering_many_tools_is_linear() -> None:
    import time

    base = make("base")
    tools = [base.renamed(f"t{i}") for i in range(20_000)]
    start = time.perf_counter()
    ts = Toolset(tools)
    elapsed = time.perf_counter() - start
    # quadratic re-indexing took ~100 s for 10,000 tools; linear is well under a second
    assert elapsed < 3.0, elapsed
    assert len(ts) == 20_000
    t, note = ts.resolve("t19999", RunContext())
    assert t is tools[-1] and note is None


def test_register_many_is_all_or_nothing() -> None:
    ts = Toolset([make("a")])
    gen = ts.generation
    with pytest.raises(SchemaError, match="already registered"):
        ts.register_many([make("b"), make("a")])
    assert ts.names() == ["a"] and ts.generation == gen
    with pytest.raises(SchemaError, match="already registered"):
        ts.register_many([make("c"), make("c")])
    assert "c" not in ts
    out = ts.register_many([make("b"), make("c", version="2")], roles=["ops"])
    assert [t.name for t in out] == ["b", "c"] and ts.generation == gen + 1
    assert [t.name for t in ts.visible(RunContext(roles=frozenset({"ops"})))] == ["a", "b", "c"]
    assert [t.name for t in ts.visible(RunContext())] == ["a"]


def test_cached_visible_list_follows_every_change() -> None:
    ts = Toolset([make("a"), make("b")])
    ctx = RunContext()
    assert [t.name for t in ts.visible(ctx)] == ["a", "b"]
    ts.register(make("c"))
    assert [t.name for t in ts.visible(ctx)] == ["a", "b", "c"]
    ts.disable("b")
    assert [t.name for t in ts.visible(ctx)] == ["a", "c"]
    ts.register(make("a", version="2"))
    assert ts.visible(ctx)[0].version == "2"
    ts.unregister("a", "2")
    assert ts.visible(ctx)[0].version is None
    assert ts.resolve("a", ctx)[0] is ts.get("a")
    ts.unregister("c")
    assert [t.name for t in ts.visible(ctx)] == ["a"]
    assert ts.resolve("c", ctx) == (None, None)


def test_a_plain_function_is_refused_with_what_to_do() -> None:
    def plain(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="@tool"):
        Toolset([plain])  # type: ignore[list-item]


def test_tool_decorator_defaults_are_the_dataclass_defaults() -> None:
    import inspect
    import typing

    from callgate.tools import definition

    hints = typing.get_overloads(definition.tool)
    (with_options,) = [o for o in hints if "name" in inspect.signature(o).parameters]
    params = inspect.signature(with_options).parameters
    plain = make("plain")
    for name, p in params.items():
        for holder in (plain.annotations, plain.options):
            if hasattr(holder, name) and p.default not in (None, ()):
                assert getattr(holder, name) == p.default, name
    with pytest.raises(TypeError, match="did you mean 'destructive'"):
        tool(destructve=True)
