"""Policy engine: the condition language, rule selectors, precedence, files and list-time
visibility, including calls that try to get around the rules."""

from __future__ import annotations

import enum
import itertools
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from callgate.context import RunContext
from callgate.gate.protocols import PolicyDecision
from callgate.policy.engine import (
    DefaultPolicy,
    Policy,
    PolicyError,
    PythonRule,
    Rule,
    parse_condition,
    tool_tier,
)
from callgate.tools.definition import tool

POLICIES = Path(__file__).parent / "policies"


class Currency(enum.Enum):
    EUR = "EUR"
    USD = "USD"
    GBP = "GBP"


class Payment(BaseModel):
    amount: float
    currency: Currency
    tags: list[str] = []


@tool(read_only=True)
def search(query: str) -> str:
    """Search the knowledge base."""
    return query


@tool(destructive=True)
def delete_file(path: str, count: int = 1) -> str:
    """Delete files."""
    return path


@tool
def pay(amount: float, currency: str = "EUR", recipient: str = "") -> str:
    """Pay someone."""
    return "ok"


@tool
def transfer(payment: Payment, note: str | None = None) -> str:
    """Move money."""
    return "ok"


@tool(tier="admin")
def deploy(service: str, environment: str) -> str:
    """Deploy a service."""
    return "ok"


@tool
def send_mail(to: str, body: str) -> str:
    """Send an email."""
    return "ok"


@tool(name="billing_refund")
def refund(invoice_id: str, amount: float) -> str:
    """Refund an invoice."""
    return "ok"


@tool(name="billing.invoice", read_only=True)
def invoice(invoice_id: str) -> str:
    """Read an invoice."""
    return "ok"


def ctx(**kw: Any) -> RunContext:
    kw.setdefault("user_id", "u1")
    return RunContext(**kw)


def args(t: Any, **raw: Any) -> dict[str, Any]:
    """Arguments as the gate hands them to the policy: validated."""
    return dict(t.validator.validate(raw))


# --- DefaultPolicy ---------------------------------------------------------------------------


def test_default_policy_keeps_its_behaviour() -> None:
    p = DefaultPolicy()
    c = ctx()
    assert p.decide(search, {"query": "x"}, c) == PolicyDecision("allow", "default:read_only")
    d = p.decide(delete_file, {"path": "/x"}, c)
    assert (d.effect, d.rule) == ("approve", "default:destructive")
    assert p.decide(pay, {"amount": 1.0}, c).rule == "default:other"
    assert p.visible(delete_file, c) is True


def test_tier_is_annotation_or_derived() -> None:
    assert tool_tier(search) == "read"
    assert tool_tier(delete_file) == "write"
    assert tool_tier(pay) == "write"
    assert tool_tier(deploy) == "admin"


# --- condition language ----------------------------------------------------------------------

C_ADMIN = ctx(user_id="alice", roles={"admin", "ops"}, tenant="acme", turn=3)
C_PLAIN = ctx(user_id="bob", roles=set(), tenant=None)


@pytest.mark.parametrize(
    ("expr", "raw", "c", "expected"),
    [
        ("amount > 1000", {"amount": 1500}, C_PLAIN, True),
        ("amount > 1000", {"amount": 1000}, C_PLAIN, False),
        ("amount >= 1000", {"amount": 1000}, C_PLAIN, True),
        ("amount < 0.5", {"amount": 0.25}, C_PLAIN, True),
        ("amount <= -1", {"amount": -3}, C_PLAIN, True),
        ("amount == 10", {"amount": 10.0}, C_PLAIN, True),
        ("amount != 10", {"amount": 10.0}, C_PLAIN, False),
        ("amount > 1e3", {"amount": 1001}, C_PLAIN, True),
        ("currency == 'EUR'", {"currency": "EUR"}, C_PLAIN, True),
        ('currency in ["EUR", "USD"]', {"currency": "GBP"}, C_PLAIN, False),
        ('currency not in ["EUR", "USD"]', {"currency": "GBP"}, C_PLAIN, True),
        (
            'recipient matches "^[a-z]+@example\\\\.com$"',
            {"recipient": "x@example.com"},
            C_PLAIN,
            True,
        ),
        (
            'recipient matches "^[a-z]+@example\\\\.com$"',
            {"recipient": "x@exampleXcom"},
            C_PLAIN,
            False,
        ),
        ('recipient startswith "acct-"', {"recipient": "acct-9"}, C_PLAIN, True),
        ('recipient endswith ".org"', {"recipient": "a@b.com"}, C_PLAIN, False),
        ('recipient contains "@"', {"recipient": "a@b"}, C_PLAIN, True),
        ('"@" in recipient', {"recipient": "nobody"}, C_PLAIN, False),
        # absent / null values never satisfy ordering or text comparisons
        ("amount > 1000", {}, C_PLAIN, False),
        ("amount < 1000", {"amount": None}, C_PLAIN, False),
        ('recipient startswith "a"', {}, C_PLAIN, False),
        ("recipient == null", {}, C_PLAIN, True),
        ('recipient not in ["a"]', {}, C_PLAIN, True),
        # nested paths, list indexes
        ("payment.amount > 100", {"payment": {"amount": 101}}, C_PLAIN, True),
        ("payment.amount > 100", {"payment": {"amount": 99}}, C_PLAIN, False),
        ("items.1.sku == 'b'", {"items": [{"sku": "a"}, {"sku": "b"}]}, C_PLAIN, True),
        ("items.5.sku == 'b'", {"items": [{"sku": "a"}]}, C_PLAIN, False),
        ("args.ctx == 1", {"ctx": 1}, C_PLAIN, True),
        # booleans are not numbers
        ("dry_run == true", {"dry_run": True}, C_PLAIN, True),
        ("dry_run == 1", {"dry_run": True}, C_PLAIN, False),
        ("not dry_run", {"dry_run": False}, C_PLAIN, True),
        ("dry_run", {"dry_run": True}, C_PLAIN, True),
        # precedence: not > and > or, parentheses
        ("a == 1 or b == 1 and c == 1", {"a": 1, "b": 0, "c": 0}, C_PLAIN, True),
        ("(a == 1 or b == 1) and c == 1", {"a": 1, "b": 0, "c": 0}, C_PLAIN, False),
        ("not a == 1 and b == 1", {"a": 2, "b": 1}, C_PLAIN, True),
        ("not (a == 1 or b == 1)", {"a": 2, "b": 1}, C_PLAIN, False),
        # context and tool fields
        ('"admin" in ctx.roles', {}, C_ADMIN, True),
        ('"admin" in ctx.roles', {}, C_PLAIN, False),
        ('ctx.roles contains "ops"', {}, C_ADMIN, True),
        ('ctx.tenant == "acme"', {}, C_ADMIN, True),
        ("ctx.tenant == null", {}, C_PLAIN, True),
        ('ctx.user_id == "alice"', {}, C_ADMIN, True),
        ("ctx.turn >= 3", {}, C_ADMIN, True),
        ('tool.name == "pay"', {}, C_PLAIN, True),
        ('tool.tier == "write"', {}, C_PLAIN, True),
        # escapes in strings
        (r'note == "say \"hi\""', {"note": 'say "hi"'}, C_PLAIN, True),
        ("note == 'it\\'s'", {"note": "it's"}, C_PLAIN, True),
    ],
)
def test_condition_language(expr: str, raw: dict[str, Any], c: RunContext, expected: bool) -> None:
    assert parse_condition(expr).evaluate(pay, raw, c) is expected


def test_conditions_read_validated_models_and_enums() -> None:
    a = args(transfer, payment={"amount": 5000, "currency": "GBP", "tags": ["x", "urgent"]})
    assert not isinstance(a["payment"], dict)  # a real model instance, as the gate passes it
    c = ctx()
    assert parse_condition("payment.amount > 1000").evaluate(transfer, a, c)
    assert parse_condition('payment.currency == "GBP"').evaluate(transfer, a, c)
    assert parse_condition('payment.currency in ["EUR", "USD"]').evaluate(transfer, a, c) is False
    assert parse_condition('payment.tags.1 == "urgent"').evaluate(transfer, a, c)
    assert parse_condition('"urgent" in payment.tags').evaluate(transfer, a, c)
    # methods and private attributes of models are not reachable
    assert parse_condition("payment.model_dump == null").evaluate(transfer, a, c)
    assert parse_condition("payment.__class__ == null").evaluate(transfer, a, c)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("amount >", "column"),
        ("amount > 1000 1", "column 15"),
        ("(amount > 1", "')'"),
        ("__import__('os').system('x')", "column"),
        ("amount > 1; drop", "unexpected character"),
        ("open('/etc/passwd')", "column"),
        ("ctx.deps == 1", "unknown context field"),
        ("ctx.request == 'x'", "unknown context field"),
        ("tool.fn == 1", "unknown tool field"),
        ("dry_run == True", "true, false and null"),
        ("args == 1", "args.amount"),
        ("x matches 1", "regular expression"),
        ("x matches '(['", "bad regular expression"),
        ("1 == 1", "no field"),
        ("x in [a]", "literal value"),
        ("", "must not be empty"),
        ("a == 1 " + "and a == 1 " * 500, "longer than"),
        ("not " * 100 + "a", "nested"),
        ("(" * 100 + "a" + ")" * 100, "nested"),
    ],
)
def test_bad_conditions_are_refused_with_a_location(expr: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_condition(expr)
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    ("expr", "raw"),
    [
        ("amount > 10", {"amount": "lots"}),
        ("amount > 'x'", {"amount": 5}),
        ("x in 5", {"x": 1}),
        ("name matches 'a'", {"name": 5}),
        ("name startswith 'a'", {"name": 5}),
        ("amount > 1", {"amount": float("nan")}),
        ("amount > 1", {"amount": [1]}),
    ],
)
def test_type_errors_fail_closed(expr: str, raw: dict[str, Any]) -> None:
    # An allow rule whose condition cannot be evaluated must deny, and say which rule broke.
    p = Policy([Rule("guarded", "allow", when=expr), Rule("rest", "allow")])
    d = p.decide(pay, raw, ctx())
    assert d.effect == "deny"
    assert d.rule == "guarded"
    assert "could not be evaluated" in d.reason
    assert f"{expr.split()[0]} {expr.split()[1]}" in d.reason  # names the failing comparison


# --- selectors -------------------------------------------------------------------------------


def test_tool_names_globs_and_namespaces() -> None:
    p = Policy(
        [
            Rule("exact", "allow", tools="pay"),
            Rule("glob", "approve", tools=["send_*", "delete_?ile"]),
            Rule("ns", "allow", namespaces="billing"),
        ]
    )
    c = ctx()
    assert p.decide(pay, {"amount": 1}, c).rule == "exact"
    assert p.decide(send_mail, {}, c).rule == "glob"
    assert p.decide(delete_file, {}, c).rule == "glob"
    assert p.decide(refund, {}, c).rule == "ns"  # billing_refund
    assert p.decide(invoice, {}, c).rule == "ns"  # billing.invoice
    assert p.decide(search, {}, c).rule == "default-deny"
    assert p.decide(deploy, {}, c).effect == "deny"


def test_tiers_roles_tenants_users() -> None:
    p = Policy(
        [
            Rule("reads", "allow", tiers="read"),
            Rule("admin-tier", "allow", tiers="admin", roles="admin"),
            Rule("acme-writes", "allow", tiers="write", tenants="acme"),
            Rule("alice", "approve", users=["alice"]),
        ]
    )
    assert p.decide(search, {}, ctx()).rule == "reads"
    assert p.decide(deploy, {}, ctx(roles={"admin"})).rule == "admin-tier"
    assert p.decide(deploy, {}, ctx(roles={"ops"})).rule == "default-deny"
    assert p.decide(pay, {}, ctx(tenant="acme")).rule == "acme-writes"
    assert p.decide(pay, {}, ctx(tenant="globex")).rule == "default-deny"
    assert p.decide(pay, {}, ctx(tenant=None)).rule == "default-deny"
    assert p.decide(pay, {}, ctx(user_id="alice", tenant="globex")).rule == "alice"
    assert p.decide(pay, {}, ctx(user_id=None)).rule == "default-deny"


def test_every_decision_names_its_rule_and_reason() -> None:
    p = Policy.from_file(POLICIES / "payments.yaml")
    tools = [search, delete_file, pay, transfer, deploy, send_mail, refund, invoice]
    contexts = [C_ADMIN, C_PLAIN, ctx(roles={"finance"}, tenant="acme")]
    for t, c in itertools.product(tools, contexts):
        d = p.decide(t, {"amount": 5000, "currency": "EUR", "to": "x@y.z"}, c)
        assert d.rule
        assert d.reason
        assert d.effect in ("allow", "deny", "approve")


def test_rule_reason_default_mentions_condition() -> None:
    p = Policy([Rule("big", "approve", when="amount > 1000")])
    d = p.decide(pay, {"amount": 2000}, ctx())
    assert d == PolicyDecision(
        "approve", "big", "policy rule 'big' requires approval for this call when amount > 1000"
    )


# --- precedence ------------------------------------------------------------------------------


RULES = [
    Rule("finance-pays", "allow", tools="pay", roles="finance"),
    Rule("no-big-payments", "deny", tools="pay", when="amount > 10000"),
    Rule("big-payments", "approve", tools="pay", when="amount > 1000"),
]


def test_first_match_wins() -> None:
    p = Policy(RULES)
    fin = ctx(roles={"finance"})
    assert p.decide(pay, {"amount": 50000}, fin).rule == "finance-pays"
    assert p.decide(pay, {"amount": 50000}, ctx()).rule == "no-big-payments"
    assert p.decide(pay, {"amount": 5000}, ctx()).rule == "big-payments"
    assert p.decide(pay, {"amount": 5}, ctx()).rule == "default-deny"


def test_deny_overrides_takes_the_most_restrictive_match() -> None:
    p = Policy(RULES, mode="deny-overrides")
    fin = ctx(roles={"finance"})
    assert p.decide(pay, {"amount": 50000}, fin).rule == "no-big-payments"
    assert p.decide(pay, {"amount": 5000}, fin).rule == "big-payments"
    assert p.decide(pay, {"amount": 5}, fin).rule == "finance-pays"
    assert p.decide(pay, {"amount": 5}, ctx()).rule == "default-deny"


def test_no_rules_means_deny_everything() -> None:
    p = Policy([])
    for t in (search, delete_file, pay):
        d = p.decide(t, {}, ctx(roles={"admin"}))
        assert (d.effect, d.rule) == ("deny", "default-deny")
        assert p.visible(t, ctx(roles={"admin"})) is False


def test_policy_construction_errors() -> None:
    with pytest.raises(PolicyError, match="unique"):
        Policy([Rule("a", "allow"), Rule("a", "deny")])
    with pytest.raises(PolicyError, match="mode"):
        Policy([], mode="last-match")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="effect"):
        Rule("a", "permit")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="reserved"):
        Rule("default-deny", "allow")
    with pytest.raises(PolicyError, match="must not be empty"):
        Rule("a", "allow", roles=[])
    with pytest.raises(PolicyError, match="name"):
        Rule("  ", "allow")
    with pytest.raises(PolicyError, match="not a rule"):
        Policy(["allow-all"])  # type: ignore[list-item]


# --- Python rules ----------------------------------------------------------------------------


def test_python_rules() -> None:
    calls: list[str] = []

    def weekend_freeze(t: Any, a: dict[str, Any], c: RunContext) -> PolicyDecision | None:
        calls.append(t.name)
        if a.get("environment") == "production":
            return PolicyDecision("deny", "", "frozen this weekend")
        return None

    def boom(t: Any, a: dict[str, Any], c: RunContext) -> PolicyDecision | None:
        raise RuntimeError("database down")

    def wrong(t: Any, a: dict[str, Any], c: RunContext) -> PolicyDecision | None:
        return "allow"  # type: ignore[return-value]

    p = Policy(
        [
            PythonRule("freeze", weekend_freeze, tools="deploy"),
            PythonRule("broken", boom, tools="pay"),
            PythonRule("wrong", wrong, tools="send_mail"),
            Rule("rest", "allow"),
        ]
    )
    d = p.decide(deploy, {"service": "a", "environment": "production"}, ctx())
    assert d == PolicyDecision("deny", "freeze", "frozen this weekend")
    assert p.decide(deploy, {"service": "a", "environment": "staging"}, ctx()).rule == "rest"
    assert p.decide(search, {}, ctx()).rule == "rest"
    assert calls == ["deploy", "deploy"]  # selectors keep the function away from other tools
    broken = p.decide(pay, {}, ctx())
    assert (broken.effect, broken.rule) == ("deny", "broken")
    assert "database down" in broken.reason
    assert p.decide(send_mail, {}, ctx()).effect == "deny"


def test_plain_callables_become_python_rules() -> None:
    def only_alice(t: Any, a: dict[str, Any], c: RunContext) -> PolicyDecision | None:
        return PolicyDecision("allow", "alice-ok") if c.user_id == "alice" else None

    p = Policy([only_alice])
    assert p.decide(pay, {}, ctx(user_id="alice")).rule == "alice-ok"
    assert p.decide(pay, {}, ctx(user_id="bob")).rule == "default-deny"
    assert p.rules[0].name == "only_alice"


def test_python_rule_visibility_hook() -> None:
    def staff(t: Any, a: dict[str, Any], c: RunContext) -> PolicyDecision | None:
        return PolicyDecision("allow", "staff") if "staff" in c.roles else None

    p1 = Policy([PythonRule("staff", staff)])
    assert p1.visible(pay, ctx()) is True  # unknown without a hook: shown, decide() still denies
    assert p1.decide(pay, {}, ctx()).effect == "deny"
    p2 = Policy([PythonRule("staff", staff, visible=lambda t, c: "staff" in c.roles)])
    assert p2.visible(pay, ctx()) is False
    assert p2.visible(pay, ctx(roles={"staff"})) is True


# --- visibility ------------------------------------------------------------------------------


def test_visible_follows_the_rules() -> None:
    p = Policy.from_file(POLICIES / "payments.yaml")
    plain, fin = ctx(), ctx(roles={"finance"})
    assert p.visible(search, plain)
    assert not p.visible(pay, plain)  # every pay call of a non-finance user is denied
    assert p.visible(pay, fin)
    assert not p.visible(deploy, plain)
    # ops may deploy to staging, so the tool is shown; production is refused at call time
    ops = ctx(roles={"ops"})
    assert p.visible(deploy, ops)
    assert p.decide(deploy, {"service": "a", "environment": "production"}, ops).rule == (
        "prod-deploy-admin-only"
    )
    assert not p.visible(refund, ctx(tenant="globex"))
    assert p.visible(refund, ctx(tenant="acme"))
    assert p.visible(send_mail, plain)  # some recipients are allowed, others need approval


def test_visible_three_valued_logic() -> None:
    p = Policy(
        [
            Rule("ctx-deny", "deny", when='ctx.tenant == "x" or amount > 5'),
            Rule("arg-deny", "deny", when='amount > 5 and ctx.tenant == "y"'),
            Rule("rest", "allow", tools="pay"),
        ]
    )
    assert not p.visible(pay, ctx(tenant="x"))  # True or UNKNOWN -> True: always denied
    assert p.visible(pay, ctx(tenant="y"))  # UNKNOWN and True -> UNKNOWN: some calls pass
    assert p.visible(pay, ctx(tenant="z"))
    assert not p.visible(search, ctx(tenant="z"))  # only default-deny left


def test_visible_deny_overrides() -> None:
    p = Policy.from_file(POLICIES / "shared-tenants.yaml")
    editor = ctx(roles={"editor"}, tenant="t1")
    frozen = ctx(roles={"editor"}, tenant="frozen")
    assert p.visible(delete_file, editor)
    assert not p.visible(delete_file, frozen)
    assert p.visible(search, frozen)
    assert not p.visible(pay, ctx(tenant="t1"))
    assert p.decide(delete_file, {"path": "/", "count": 500}, editor).rule == "bulk-deletes"
    assert p.decide(delete_file, {"path": "/", "count": 500}, frozen).rule == "frozen-tenant"
    assert p.decide(delete_file, {"path": "/", "count": 5}, editor).rule == "writers"


SAMPLE_ARGS: list[dict[str, Any]] = [
    {},
    {"amount": 0},
    {"amount": 10**9, "currency": "EUR"},
    {"amount": 5, "currency": "XXX"},
    {"environment": "production", "service": "db"},
    {"environment": "staging", "service": "db"},
    {"to": "ceo@example.com", "body": "hi"},
    {"to": "someone@evil.test", "body": "hi"},
    {"count": 1000, "path": "/"},
]
CONTEXTS = [
    ctx(),
    ctx(roles={"finance"}),
    ctx(roles={"ops"}),
    ctx(roles={"admin"}, tenant="acme"),
    ctx(tenant="globex"),
    ctx(roles={"editor"}, tenant="frozen"),
]
TOOLS = [search, delete_file, pay, deploy, send_mail, refund, invoice]


@pytest.mark.parametrize("policy_file", ["payments.yaml", "payments.toml", "shared-tenants.yaml"])
def test_hidden_tools_called_by_name_are_still_denied(policy_file: str) -> None:
    """A caller that skips list_tools and calls a hidden tool by name gets a deny, whatever the
    arguments: visible() never hides something decide() would let through."""
    p = Policy.from_file(POLICIES / policy_file)
    hidden = 0
    for t, c in itertools.product(TOOLS, CONTEXTS):
        if p.visible(t, c):
            continue
        hidden += 1
        for a in SAMPLE_ARGS:
            assert p.decide(t, a, c).effect == "deny", (t.name, c, a)
    assert hidden >= 5


def test_tenant_isolation() -> None:
    p = Policy(
        [
            Rule("acme-tools", "allow", namespaces="acme", tenants="acme"),
            Rule("globex-tools", "allow", namespaces="globex", tenants="globex"),
        ]
    )
    acme_tool = pay.renamed("acme_pay")
    globex_tool = pay.renamed("globex_pay")
    a, g = ctx(tenant="acme"), ctx(tenant="globex")
    assert p.visible(acme_tool, a) and not p.visible(acme_tool, g)
    assert p.visible(globex_tool, g) and not p.visible(globex_tool, a)
    assert p.decide(acme_tool, {"amount": 1}, g).rule == "default-deny"
    assert p.decide(globex_tool, {"amount": 1}, a).rule == "default-deny"
    assert p.decide(acme_tool, {"amount": 1}, ctx(tenant=None)).effect == "deny"


# --- files -----------------------------------------------------------------------------------


def test_yaml_and_toml_examples_agree() -> None:
    y = Policy.from_file(POLICIES / "payments.yaml")
    t = Policy.from_file(POLICIES / "payments.toml")
    assert [r.name for r in y.rules] == [r.name for r in t.rules]
    assert y.mode == t.mode == "first-match"
    for tl, c, a in itertools.product(TOOLS, CONTEXTS, SAMPLE_ARGS):
        assert y.decide(tl, a, c) == t.decide(tl, a, c)
        assert y.visible(tl, c) == t.visible(tl, c)


def test_example_policy_decisions() -> None:
    p = Policy.from_file(POLICIES / "payments.yaml")
    fin = ctx(roles={"finance"})
    assert p.decide(pay, args(pay, amount=50, currency="EUR"), fin).rule == "payments"
    big = p.decide(pay, args(pay, amount=5000, currency="USD"), fin)
    assert (big.effect, big.rule, big.reason) == (
        "approve",
        "big-payments",
        "payments over 1000 need a second person",
    )
    assert p.decide(pay, args(pay, amount=5, currency="JPY"), fin).rule == "foreign-currency"
    assert p.decide(pay, args(pay, amount=5), ctx()).rule == "default-deny"
    assert p.decide(send_mail, {"to": "a@example.com", "body": ""}, ctx()).rule == "internal-mail"
    # an anchored pattern: a look-alike domain does not pass
    assert p.decide(send_mail, {"to": "a@example.com.evil", "body": ""}, ctx()).rule == "other-mail"
    assert p.decide(deploy, {"environment": "production"}, ctx(roles={"admin"})).rule == "deploys"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text", "fragments"),
    [
        (
            "p.yaml",
            "rules:\n  - name: a\n    effect: allow\n    tool: pay\n",
            ["p.yaml", "rule #1 'a'", "unknown key 'tool'", "did you mean 'tools'"],
        ),
        (
            "p.yaml",
            "rules:\n  - name: a\n    effect: allow\n  - name: b\n    efect: deny\n",
            ["rule #2 'b'", "unknown key 'efect'", "'effect'"],
        ),
        ("p.yaml", "rules:\n  - name: a\n", ["rule #1 'a'", "field 'effect' is required"]),
        ("p.yaml", "rules:\n  - effect: allow\n", ["rule #1", "field 'name' is required"]),
        (
            "p.yaml",
            "rules:\n  - name: a\n    effect: permit\n",
            ["rule #1 'a'", "field 'effect'", "allow, deny, approve"],
        ),
        (
            "p.yaml",
            "rules:\n  - name: big\n    effect: approve\n    when: amount >> 5\n",
            ["p.yaml", "rule #1 'big'", "field 'when'", "column 9"],
        ),
        (
            "p.yaml",
            "rules:\n  - name: a\n    effect: allow\n    when: 5\n",
            ["rule #1 'a'", "field 'when' must be a string"],
        ),
        (
            "p.yaml",
            "rules:\n  - name: a\n    effect: allow\n    roles: {admin: 1}\n",
            ["rule #1 'a'", "field 'roles'", "list of strings"],
        ),
        (
            "p.yaml",
            "rules:\n  - name: a\n    effect: allow\n    roles: []\n",
            ["rule #1 'a'", "field 'roles' must not be empty"],
        ),
        (
            "p.yaml",
            "rules:\n  - name: a\n    effect: allow\n    roles: [1]\n",
            ["rule #1 'a'", "field 'roles'"],
        ),
        ("p.yaml", "rules: []\n", ["p.yaml", "'rules' must be a non-empty list"]),
        ("p.yaml", "", ["p.yaml", "'rules'"]),
        ("p.yaml", "- a\n- b\n", ["p.yaml", "mapping"]),
        ("p.yaml", "rulez: []\n", ["p.yaml", "unknown key 'rulez'", "did you mean 'rules'"]),
        (
            "p.yaml",
            "mode: strict\nrules:\n  - {name: a, effect: allow}\n",
            ["field 'mode'", "first-match"],
        ),
        ("p.yaml", "version: 2\nrules:\n  - {name: a, effect: allow}\n", ["field 'version'"]),
        (
            "p.yaml",
            "rules:\n  - {name: a, effect: allow}\n  - {name: a, effect: deny}\n",
            ["p.yaml", "two rules are named 'a'"],
        ),
        ("p.yaml", "rules: [\n", ["p.yaml", "invalid YAML"]),
        ("p.yaml", "rules:\n  - just-a-string\n", ["rule #1", "must be a mapping"]),
        (
            "p.toml",
            "[[rules]]\nname = 'a'\neffect = 'allow'\ntenant = 'x'\n",
            ["p.toml", "'tenants'"],
        ),
        ("p.toml", "[[rules]\n", ["p.toml", "invalid TOML"]),
        ("p.json", "{}", ["p.json", "use .yaml, .yml or .toml"]),
    ],
)
def test_bad_policy_files_name_file_rule_and_field(
    tmp_path: Path, name: str, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(PolicyError) as exc:
        Policy.from_file(path)
    msg = str(exc.value)
    for fragment in fragments:
        assert fragment in msg, msg


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Policy.from_file(tmp_path / "nope.yaml")


def test_yaml_safe_load_only(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        "rules:\n  - name: !!python/object/apply:os.system ['echo pwned']\n    effect: allow\n",
    )
    with pytest.raises(PolicyError, match="invalid YAML"):
        Policy.from_file(path)


def test_from_dict_accepts_parsed_data() -> None:
    p = Policy.from_dict(
        {"mode": "deny-overrides", "rules": [{"name": "r", "effect": "allow", "tools": "pay"}]},
        source="inline",
    )
    assert p.mode == "deny-overrides"
    assert p.source == "inline"
    assert p.decide(pay, {}, ctx()).rule == "r"


# --- through the gate: bypass attempts -------------------------------------------------------


class Ran:
    def __init__(self) -> None:
        self.names: list[str] = []


def gated(policy: Policy) -> tuple[Any, Ran]:
    from callgate.gate.core import Gate
    from callgate.tools.toolset import Toolset

    ran = Ran()

    @tool(destructive=True)
    def drop_table(table: str) -> str:
        """Drop a table."""
        ran.names.append("drop_table")
        return "dropped"

    @tool(read_only=True)
    def report(period: str) -> str:
        """Read a report."""
        ran.names.append("report")
        return "report"

    @tool
    def acme_export(kind: str) -> str:
        """Export acme data."""
        ran.names.append("acme_export")
        return "exported"

    ts = Toolset()
    ts.register(drop_table)
    ts.register(report)
    ts.register(acme_export, tenants=["acme"])
    return Gate(ts, policy=policy), ran


BYPASS_POLICY = Policy(
    [
        Rule("reads", "allow", tiers="read"),
        Rule("dba-only", "allow", tools="drop_table", roles="dba"),
        Rule("acme-only", "allow", tools="acme_*", tenants="acme"),
    ]
)


async def test_gate_lists_only_what_policy_allows() -> None:
    from callgate.testing import call

    g, ran = gated(BYPASS_POLICY)
    plain = ctx(tenant="globex")
    assert sorted(t.name for t in g.list_tools(plain)) == ["report"]
    dba_acme = ctx(roles={"dba"}, tenant="acme")
    assert sorted(t.name for t in g.list_tools(dba_acme)) == ["acme_export", "drop_table", "report"]
    assert (await g.execute(call("report", {"period": "q1"}), plain)).error_kind is None
    assert ran.names == ["report"]


async def test_gate_refuses_calls_that_skip_list_tools() -> None:
    from callgate.testing import call

    g, ran = gated(BYPASS_POLICY)
    plain = ctx(tenant="globex")
    # A tool hidden from this role, called by name anyway; another tenant's tool; a tool that
    # does not exist; a pinned version of a hidden tool. The gate answers all of them the same
    # way (so a caller cannot probe which hidden tools exist) and runs none of them.
    attempts = [
        call("drop_table", {"table": "users"}),
        call("acme_export", {"kind": "all"}),
        call("no_such_tool", {}),
        call("drop_table@1", {"table": "users"}),
    ]
    results = [await g.execute(c, plain) for c in attempts]
    for c, r in zip(attempts, results, strict=True):
        assert r.error_kind in ("correctable", "denied"), r
        assert "nothing was run" in r.content or "not run" in r.content
        assert "drop_table" not in r.content.split("Available tools:")[-1]
        assert "acme_export" not in r.content.split("Available tools:")[-1]
    assert results[0].content.replace("drop_table", "X") == results[2].content.replace(
        "no_such_tool", "X"
    )
    assert ran.names == []
    # and the policy on its own denies it too, for a caller that goes around the toolset
    drop = g.toolset.get("drop_table")
    assert g.policy.decide(drop, {"table": "users"}, plain).effect == "deny"
    # the tenant's own run may call it; the policy also checks the tenant, not only the toolset
    acme = await g.execute(call("acme_export", {"kind": "all"}), ctx(tenant="acme"))
    assert acme.error_kind is None
    assert ran.names == ["acme_export"]


async def test_gate_denies_a_disabled_tool_even_for_allowed_roles() -> None:
    from callgate.testing import call

    g, ran = gated(BYPASS_POLICY)
    g.toolset.disable("drop_*", note="maintenance")
    res = await g.execute(call("drop_table", {"table": "t"}), ctx(roles={"dba"}))
    assert res.error_kind == "denied" and "maintenance" in res.content
    assert "drop_table" not in [t.name for t in g.list_tools(ctx(roles={"dba"}))]
    assert ran.names == []


async def test_policy_enforces_tenants_even_when_the_toolset_does_not() -> None:
    """Defence in depth: a tool registered without a tenant scope is still refused to other
    tenants when the policy says so."""
    from callgate.gate.core import Gate
    from callgate.testing import call

    ran: list[str] = []

    @tool
    def acme_sync(kind: str) -> str:
        """Sync acme data."""
        ran.append(kind)
        return "ok"

    g = Gate([acme_sync], policy=BYPASS_POLICY)
    assert g.list_tools(ctx(tenant="globex")) == []
    res = await g.execute(call("acme_sync", {"kind": "x"}), ctx(tenant="globex"))
    assert res.error_kind in ("denied", "correctable")
    assert "nothing was run" in res.content or "not run" in res.content
    assert ran == []
    assert (
        await g.execute(call("acme_sync", {"kind": "y"}), ctx(tenant="acme"))
    ).error_kind is None
    assert ran == ["y"]
