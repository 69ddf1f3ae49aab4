"""Policy: one decision (allow / deny / approve) per proposed call, and the same rules at list time.

Two engines live here:

- `DefaultPolicy` runs when nothing is configured: read-only tools run, destructive ones need
  approval, everything else runs. It exists so that a first prototype is useful and still asks a
  person before anything destructive happens.
- `Policy` is an ordered list of rules, written in Python or loaded from a YAML / TOML file. Once
  a `Policy` is configured it is *deny by default*: a call no rule covers is denied by the
  built-in rule ``default-deny``. Forgetting a rule therefore fails closed, never open.

Precedence. ``mode="first-match"`` (the default) evaluates the rules top to bottom and the first
rule that matches decides, like a firewall: put narrow exceptions above broad rules.
``mode="deny-overrides"`` evaluates every rule and the most restrictive matching effect wins
(deny > approve > allow); choose it when rules come from several authors and nobody should be able
to widen access by adding a rule above someone else's deny.

A rule matches when every selector it has matches: ``tools`` (names or globs), ``namespaces``
(``billing`` matches ``billing_*`` and ``billing.*``), ``tiers`` (the annotation ``tier``, else
``read`` for read-only tools and ``write`` for anything that may change state), ``roles`` (the run
has at least one), ``tenants``, ``users``, and the ``when`` condition on the validated arguments
and the run context. Conditions are written in a small language that is parsed, never ``eval``-ed:

    amount > 1000
    payment.currency in ["EUR", "USD"] and not dry_run
    environment == "production" and "admin" not in ctx.roles
    recipient matches "@example\\.com$" or ctx.tenant == "acme"

Operators: ``== != < <= > >=``, ``in`` / ``not in``, ``contains``, ``matches`` (regular
expression, searched: anchor it with ``^`` and ``$``), ``startswith``, ``endswith``; ``and``,
``or``, ``not`` and parentheses. Bare names are argument paths (``payment.amount``,
``items.0.sku``; ``args.x`` when an argument is itself called ``ctx`` or ``tool``); ``ctx.user_id``,
``ctx.roles``, ``ctx.tenant``, ``ctx.turn`` read the run context; ``tool.name``, ``tool.tier``,
``tool.version`` the tool. Literals: strings, numbers, ``true``, ``false``, ``null`` and lists.

An absent argument (or null) never satisfies an ordering or text comparison, so ``amount > 1000``
does not match a call without an amount. A comparison between incompatible types (a string and a
number) is a policy bug: the call is denied, with the rule named, instead of guessing.

List time. `Policy.visible(tool, ctx)` evaluates the same rules with the arguments unknown, using
three-valued logic: a tool is hidden only when every possible call would be denied for this run.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import fnmatch
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

from callgate.context import RunContext
from callgate.errors import CallgateError
from callgate.gate.base import Effect, PolicyDecision
from callgate.tools import Tool

__all__ = [
    "ConditionError",
    "DefaultPolicy",
    "Policy",
    "PolicyError",
    "PythonRule",
    "Rule",
    "parse_condition",
    "tool_tier",
]

Mode = Literal["first-match", "deny-overrides"]
DEFAULT_DENY: Final = "default-deny"
_EFFECTS: Final = ("allow", "deny", "approve")
_MODES: Final = ("first-match", "deny-overrides")
_SEVERITY: Final = {"allow": 0, "approve": 1, "deny": 2}


class DefaultPolicy:
    """Read-only tools run; destructive tools need approval; other tools run."""

    def decide(self, tool: Tool, args: dict[str, Any], ctx: RunContext) -> PolicyDecision:
        ann = tool.annotations
        if ann.destructive:
            return PolicyDecision(
                "approve", "default:destructive", "destructive tools need approval"
            )
        if ann.read_only:
            return PolicyDecision("allow", "default:read_only")
        return PolicyDecision("allow", "default:other")

    def visible(self, tool: Tool, ctx: RunContext) -> bool:
        return True


def tool_tier(tool: Tool) -> str:
    """The tool's policy tier: its ``tier`` annotation, else ``read`` for read-only tools and
    ``write`` for every other tool (anything not declared read-only may change state)."""
    ann = tool.annotations
    if ann.tier:
        return ann.tier
    return "read" if ann.read_only else "write"


class PolicyError(CallgateError):
    """A policy (file, rule or condition) was refused when it was loaded or built."""


class ConditionError(Exception):
    """A condition could not be evaluated for a call (incompatible types, bad path)."""


# --- condition language --------------------------------------------------------------------


class _Unknown:
    """The value of an argument at list time, when no arguments exist yet."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
_MISSING: Final = object()
Tri: TypeAlias = "bool | _Unknown"

_MAX_CONDITION_LEN: Final = 4000
_MAX_DEPTH: Final = 40
_CTX_FIELDS: Final = frozenset({"user_id", "roles", "tenant", "turn"})
_TOOL_FIELDS: Final = frozenset({"name", "tier", "version"})
_KEYWORDS: Final = frozenset(
    {"and", "or", "not", "in", "contains", "matches", "startswith", "endswith"}
)
_LITERALS: Final = {"true": True, "false": False, "null": None}
_GLOB_CHARS: Final = frozenset("*?[")
_WORD_OPS: Final = frozenset({"in", "contains", "matches", "startswith", "endswith"})

_TOKEN_RE: Final = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|\d+))*)
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\],])
    """,
    re.VERBOSE,
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num | str | name | kw | lit | op | punct | end
    value: Any
    pos: int


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise PolicyError(f"unexpected character {text[pos]!r} at column {pos + 1}")
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "num":
            num: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
            toks.append(_Tok("num", num, pos))
        elif kind == "str":
            toks.append(_Tok("str", _unescape(raw[1:-1]), pos))
        elif kind == "name":
            if raw in _KEYWORDS:
                toks.append(_Tok("kw", raw, pos))
            elif raw in _LITERALS:
                toks.append(_Tok("lit", _LITERALS[raw], pos))
            else:
                toks.append(_Tok("name", raw, pos))
        elif kind in ("op", "punct"):
            toks.append(_Tok(kind, raw, pos))
        pos = m.end()
    toks.append(_Tok("end", None, len(text)))
    return toks


@dataclasses.dataclass(frozen=True, slots=True)
class _Path:
    """A field path: scope is "args", "ctx" or "tool"."""

    scope: str
    parts: tuple[str, ...]
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Lit:
    value: Any


@dataclasses.dataclass(frozen=True, slots=True)
class _Cmp:
    op: str
    left: _Path | _Lit
    right: _Path | _Lit | re.Pattern[str]


@dataclasses.dataclass(frozen=True, slots=True)
class _Truthy:
    operand: _Path | _Lit


@dataclasses.dataclass(frozen=True, slots=True)
class _Not:
    expr: _Node


@dataclasses.dataclass(frozen=True, slots=True)
class _BoolOp:
    op: str  # and | or
    items: tuple[_Node, ...]


_Node: TypeAlias = "_Cmp | _Truthy | _Not | _BoolOp"


class _Parser:
    """Recursive descent over the token list; depth-limited so a hostile file cannot blow the
    stack."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self, offset: int = 0) -> _Tok:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: _Tok, expected: str) -> PolicyError:
        got = "end of condition" if tok.kind == "end" else repr(self.text[tok.pos :][:20])
        return PolicyError(f"expected {expected} at column {tok.pos + 1}, found {got}")

    def parse(self) -> _Node:
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            raise self.fail(tok, "'and', 'or' or the end of the condition")
        return node

    def or_expr(self) -> _Node:
        items = [self.and_expr()]
        while self.peek().kind == "kw" and self.peek().value == "or":
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else _BoolOp("or", tuple(items))

    def and_expr(self) -> _Node:
        items = [self.not_expr()]
        while self.peek().kind == "kw" and self.peek().value == "and":
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else _BoolOp("and", tuple(items))

    def not_expr(self) -> _Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise PolicyError(f"condition is nested more than {_MAX_DEPTH} levels deep")
        try:
            tok = self.peek()
            if tok.kind == "kw" and tok.value == "not":
                self.take()
                return _Not(self.not_expr())
            if tok.kind == "punct" and tok.value == "(":
                self.take()
                node = self.or_expr()
                close = self.take()
                if close.kind != "punct" or close.value != ")":
                    raise self.fail(close, "')'")
                return node
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> _Node:
        left = self.operand()
        tok = self.peek()
        op: str | None = None
        if tok.kind == "op" or (tok.kind == "kw" and tok.value in _WORD_OPS):
            op = str(tok.value)
            self.take()
        elif tok.kind == "kw" and tok.value == "not" and self.peek(1).value == "in":
            self.take()
            self.take()
            op = "not in"
        if op is None:
            return _Truthy(left)
        right_tok = self.peek()
        right = self.operand()
        if op == "matches":
            if not isinstance(right, _Lit) or not isinstance(right.value, str):
                raise self.fail(right_tok, "a quoted regular expression after 'matches'")
            try:
                return _Cmp(op, left, re.compile(right.value))
            except re.error as exc:
                raise PolicyError(f"bad regular expression {right.value!r}: {exc}") from None
        if isinstance(left, _Lit) and isinstance(right, _Lit):
            raise PolicyError(
                f"comparison at column {tok.pos + 1} has no field on either side "
                "(compare an argument or ctx.* with a value)"
            )
        return _Cmp(op, left, right)

    def operand(self) -> _Path | _Lit:
        tok = self.take()
        if tok.kind in ("num", "str", "lit"):
            return _Lit(tok.value)
        if tok.kind == "name":
            return _make_path(str(tok.value))
        if tok.kind == "punct" and tok.value == "[":
            items: list[Any] = []
            if self.peek().kind == "punct" and self.peek().value == "]":
                self.take()
                return _Lit(tuple(items))
            while True:
                item = self.take()
                if item.kind not in ("num", "str", "lit"):
                    raise self.fail(item, "a literal value in the list")
                items.append(item.value)
                sep = self.take()
                if sep.kind == "punct" and sep.value == "]":
                    return _Lit(tuple(items))
                if sep.kind != "punct" or sep.value != ",":
                    raise self.fail(sep, "',' or ']'")
        raise self.fail(tok, "a field, a value or a list")


def _make_path(text: str) -> _Path:
    parts = tuple(text.split("."))
    head = parts[0]
    if head == "ctx":
        if len(parts) != 2 or parts[1] not in _CTX_FIELDS:
            raise PolicyError(
                f"unknown context field {text!r}: use one of "
                + ", ".join(f"ctx.{f}" for f in sorted(_CTX_FIELDS))
            )
        return _Path("ctx", parts[1:], text)
    if head == "tool":
        if len(parts) != 2 or parts[1] not in _TOOL_FIELDS:
            raise PolicyError(
                f"unknown tool field {text!r}: use one of "
                + ", ".join(f"tool.{f}" for f in sorted(_TOOL_FIELDS))
            )
        return _Path("tool", parts[1:], text)
    if head == "args":
        if len(parts) < 2:
            raise PolicyError("'args' needs a field name, e.g. args.amount")
        return _Path("args", parts[1:], text)
    if head in ("True", "False", "None"):
        raise PolicyError(f"unknown name {head!r}: literals are written true, false and null")
    return _Path("args", parts, text)


class Condition:
    """A parsed ``when`` expression. Build it with `parse_condition`."""

    __slots__ = ("_node", "text")

    def __init__(self, text: str, node: _Node) -> None:
        self.text = text
        self._node = node

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def evaluate(self, tool: Tool, args: Mapping[str, Any], ctx: RunContext) -> bool:
        """True or False for a call; raises `ConditionError` on incompatible types."""
        result = _eval(self._node, _Env(tool, args, ctx))
        return result is True

    def could_match(self, tool: Tool, ctx: RunContext) -> Tri:
        """True / False when the answer does not depend on the arguments, else UNKNOWN."""
        try:
            return _eval(self._node, _Env(tool, None, ctx))
        except ConditionError:
            return UNKNOWN


def parse_condition(text: str) -> Condition:
    """Parse a condition; raises `PolicyError` with the column of the problem."""
    if not isinstance(text, str):
        raise PolicyError(f"a condition must be a string, not {type(text).__name__}")
    if not text.strip():
        raise PolicyError("a condition must not be empty (omit 'when' to match every call)")
    if len(text) > _MAX_CONDITION_LEN:
        raise PolicyError(f"condition is longer than {_MAX_CONDITION_LEN} characters")
    return Condition(text, _Parser(text).parse())


@dataclasses.dataclass(slots=True)
class _Env:
    tool: Tool
    args: Mapping[str, Any] | None  # None: list time, arguments unknown
    ctx: RunContext


def _normalise(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(value, key=str))
    return value


def _child(value: Any, part: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(part, _MISSING)
    if isinstance(value, (list, tuple)):
        if part.isdigit() and int(part) < len(value):
            return value[int(part)]
        return _MISSING
    if isinstance(value, (str, bytes, int, float, Decimal, bool)) or value is None:
        return _MISSING
    # Pydantic models and dataclasses: only declared fields, never methods or private state.
    fields = getattr(type(value), "model_fields", None)
    if fields is None and dataclasses.is_dataclass(value):
        fields = {f.name for f in dataclasses.fields(value)}
    if fields is not None and part in fields:
        return getattr(value, part, _MISSING)
    return _MISSING


def _resolve(path: _Path, env: _Env) -> Any:
    if path.scope == "ctx":
        return _normalise(getattr(env.ctx, path.parts[0]))
    if path.scope == "tool":
        name = path.parts[0]
        if name == "tier":
            return tool_tier(env.tool)
        return getattr(env.tool, name)
    if env.args is None:
        return UNKNOWN
    value: Any = env.args
    for part in path.parts:
        value = _child(value, part)
        if value is _MISSING:
            return None
    return _normalise(value)


def _value(operand: _Path | _Lit, env: _Env) -> Any:
    return operand.value if isinstance(operand, _Lit) else _resolve(operand, env)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if _is_number(v):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "list"
    if isinstance(v, Mapping):
        return "object"
    return type(v).__name__


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b) and not (
        isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
    ):
        return False
    return bool(a == b)


def _contains(container: Any, item: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ConditionError(f"cannot look for a {_type_name(item)} in a string")
        return item in container
    if isinstance(container, (list, tuple)):
        return any(_equal(_normalise(x), item) for x in container)
    if isinstance(container, Mapping):
        return item in container
    raise ConditionError(f"'in' needs a list or string, got {_type_name(container)}")


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("in", "not in"):
        found = _contains(b, a)
        return found if op == "in" else not found
    if op == "contains":
        return _contains(a, b)
    if a is None or b is None:
        return False  # an absent value never satisfies an ordering or text comparison
    if op in ("startswith", "endswith"):
        if not isinstance(a, str) or not isinstance(b, str):
            raise ConditionError(f"'{op}' needs two strings")
        return a.startswith(b) if op == "startswith" else a.endswith(b)
    if _is_number(a) and _is_number(b):
        if any(isinstance(x, float) and math.isnan(x) for x in (a, b)):
            raise ConditionError("cannot order NaN")
        x, y = (Decimal(str(a)), Decimal(str(b))) if Decimal in (type(a), type(b)) else (a, b)
    elif isinstance(a, str) and isinstance(b, str):
        x, y = a, b
    else:
        raise ConditionError(
            f"cannot compare {_type_name(a)} {op} {_type_name(b)} "
            "(both sides must be numbers or both strings)"
        )
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


def _eval(node: _Node, env: _Env) -> Tri:
    if isinstance(node, _BoolOp):
        results = [_eval(n, env) for n in node.items]
        if node.op == "and":
            if any(r is False for r in results):
                return False
            return True if all(r is True for r in results) else UNKNOWN
        if any(r is True for r in results):
            return True
        return False if all(r is False for r in results) else UNKNOWN
    if isinstance(node, _Not):
        inner = _eval(node.expr, env)
        return inner if isinstance(inner, _Unknown) else not inner
    if isinstance(node, _Truthy):
        v = _value(node.operand, env)
        return v if isinstance(v, _Unknown) else bool(v)
    left = _value(node.left, env)
    if isinstance(node.right, re.Pattern):
        if isinstance(left, _Unknown):
            return UNKNOWN
        if left is None:
            return False
        if not isinstance(left, str):
            raise ConditionError(f"{_describe(node)}: 'matches' needs a string")
        return node.right.search(left) is not None
    right = _value(node.right, env)
    if isinstance(left, _Unknown) or isinstance(right, _Unknown):
        return UNKNOWN
    try:
        return _compare(node.op, left, right)
    except ConditionError as exc:  # described lazily: the happy path formats nothing
        raise ConditionError(f"{_describe(node)}: {exc}") from None


def _describe(node: _Cmp) -> str:
    def side(o: Any) -> str:
        if isinstance(o, _Path):
            return o.text
        if isinstance(o, re.Pattern):
            return repr(o.pattern)
        return repr(o.value)

    return f"{side(node.left)} {node.op} {side(node.right)}"


# --- rules ---------------------------------------------------------------------------------


def _names(value: str | Iterable[str] | None, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    if not items:
        raise PolicyError(f"field {field!r} must not be empty (omit it to match everything)")
    for item in items:
        if not isinstance(item, str) or not item:
            raise PolicyError(f"field {field!r} must list non-empty strings, got {item!r}")
    return items


class _Selectors:
    """The non-condition part of a rule: which tools and which runs it is about."""

    __slots__ = (
        "_name_re",
        "_names",
        "_prefixes",
        "namespaces",
        "roles",
        "tenants",
        "tiers",
        "tools",
        "users",
    )

    def __init__(
        self,
        tools: str | Iterable[str] | None,
        namespaces: str | Iterable[str] | None,
        tiers: str | Iterable[str] | None,
        roles: str | Iterable[str] | None,
        tenants: str | Iterable[str] | None,
        users: str | Iterable[str] | None,
    ) -> None:
        self.tools = _names(tools, "tools")
        self.namespaces = _names(namespaces, "namespaces")
        self.tiers = _names(tiers, "tiers")
        self.roles = frozenset(_names(roles, "roles"))
        self.tenants = frozenset(_names(tenants, "tenants"))
        self.users = frozenset(_names(users, "users"))
        # precomputed: plain names are a set lookup, globs one compiled alternation
        self._names = frozenset(p for p in self.tools if not _GLOB_CHARS.intersection(p))
        globs = [fnmatch.translate(p) for p in self.tools if _GLOB_CHARS.intersection(p)]
        self._name_re = re.compile("|".join(globs)) if globs else None
        self._prefixes = tuple(f"{ns}{sep}" for ns in self.namespaces for sep in ("_", "."))

    def match(self, tool: Tool, ctx: RunContext) -> bool:
        name = tool.name
        if (
            self.tools
            and name not in self._names
            and (self._name_re is None or self._name_re.match(name) is None)
        ):
            return False
        if self._prefixes and not name.startswith(self._prefixes):
            return False
        if self.tiers and tool_tier(tool) not in self.tiers:
            return False
        if self.roles and not (self.roles & ctx.roles):
            return False
        if self.tenants and ctx.tenant not in self.tenants:
            return False
        return not (self.users and ctx.user_id not in self.users)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("tools", "namespaces", "tiers"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        for key in ("roles", "tenants", "users"):
            if getattr(self, key):
                out[key] = sorted(getattr(self, key))
        return out


def _check_effect(effect: str) -> Effect:
    if effect not in _EFFECTS:
        raise PolicyError(f"effect must be one of allow, deny, approve; got {effect!r}")
    return effect  # type: ignore[return-value]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise PolicyError("every rule needs a non-empty 'name' (decisions report it)")
    if name == DEFAULT_DENY:
        raise PolicyError(f"rule name {DEFAULT_DENY!r} is reserved")
    return name


class Rule:
    """A declarative rule: selectors, an optional condition, and an effect.

    >>> Rule("big-refunds", "approve", tools="refund", when="amount > 1000")  # doctest: +SKIP
    """

    __slots__ = ("condition", "effect", "name", "reason", "selectors")

    def __init__(
        self,
        name: str,
        effect: Effect,
        *,
        tools: str | Iterable[str] | None = None,
        namespaces: str | Iterable[str] | None = None,
        tiers: str | Iterable[str] | None = None,
        roles: str | Iterable[str] | None = None,
        tenants: str | Iterable[str] | None = None,
        users: str | Iterable[str] | None = None,
        when: str | None = None,
        reason: str = "",
    ) -> None:
        self.name = _check_name(name)
        self.effect = _check_effect(effect)
        self.selectors = _Selectors(tools, namespaces, tiers, roles, tenants, users)
        self.condition = parse_condition(when) if when is not None else None
        if not isinstance(reason, str):
            raise PolicyError(f"field 'reason' must be a string, got {type(reason).__name__}")
        self.reason = reason

    def __repr__(self) -> str:
        when = f", when={self.condition.text!r}" if self.condition else ""
        return f"Rule({self.name!r}, {self.effect!r}, {self.selectors.describe()}{when})"

    def decide(self, tool: Tool, args: Mapping[str, Any], ctx: RunContext) -> PolicyDecision | None:
        if not self.selectors.match(tool, ctx):
            return None
        if self.condition is not None and not self.condition.evaluate(tool, args, ctx):
            return None
        return PolicyDecision(self.effect, self.name, self.reason or _default_reason(self))

    def could_match(self, tool: Tool, ctx: RunContext) -> Tri:
        if not self.selectors.match(tool, ctx):
            return False
        if self.condition is None:
            return True
        return self.condition.could_match(tool, ctx)


def _default_reason(rule: Rule) -> str:
    verb = {"allow": "allows", "deny": "denies", "approve": "requires approval for"}[rule.effect]
    cond = f" when {rule.condition.text}" if rule.condition else ""
    return f"policy rule {rule.name!r} {verb} this call{cond}"


RuleFn = Callable[[Tool, dict[str, Any], RunContext], PolicyDecision | None]
VisibleFn = Callable[[Tool, RunContext], bool | None]


class PythonRule:
    """A rule written as a function ``(tool, args, ctx) -> PolicyDecision | None``.

    Returning None means "not my call" and evaluation moves on. The same selectors as `Rule`
    narrow which tools and runs the function is asked about. At list time a function cannot be
    asked (there are no arguments), so it counts as "could allow" unless `visible` is given:
    ``visible(tool, ctx)`` returns True (some call could be allowed), False (every call would be
    denied) or None (unknown). An exception inside the function denies the call.
    """

    __slots__ = ("effect", "fn", "name", "selectors", "visible_fn")

    def __init__(
        self,
        name: str,
        fn: RuleFn,
        *,
        tools: str | Iterable[str] | None = None,
        namespaces: str | Iterable[str] | None = None,
        tiers: str | Iterable[str] | None = None,
        roles: str | Iterable[str] | None = None,
        tenants: str | Iterable[str] | None = None,
        users: str | Iterable[str] | None = None,
        visible: VisibleFn | None = None,
    ) -> None:
        if not callable(fn):
            raise PolicyError(f"rule {name!r}: fn must be callable")
        self.name = _check_name(name)
        self.fn = fn
        self.selectors = _Selectors(tools, namespaces, tiers, roles, tenants, users)
        self.visible_fn = visible
        self.effect: Effect | None = None

    def __repr__(self) -> str:
        return f"PythonRule({self.name!r}, {getattr(self.fn, '__qualname__', self.fn)!r})"

    def decide(self, tool: Tool, args: Mapping[str, Any], ctx: RunContext) -> PolicyDecision | None:
        if not self.selectors.match(tool, ctx):
            return None
        decision = self.fn(tool, dict(args), ctx)
        if decision is None:
            return None
        if not isinstance(decision, PolicyDecision) or decision.effect not in _EFFECTS:
            raise ConditionError(f"returned {decision!r}, expected a PolicyDecision or None")
        if not decision.rule:
            decision = dataclasses.replace(decision, rule=self.name)
        return decision

    def could_match(self, tool: Tool, ctx: RunContext) -> Tri:
        if not self.selectors.match(tool, ctx):
            return False
        if self.visible_fn is None:
            return UNKNOWN
        answer = self.visible_fn(tool, ctx)
        return UNKNOWN if answer is None else answer


AnyRule: TypeAlias = "Rule | PythonRule"


class Policy:
    """An ordered rule list; deny by default. See the module docstring for the language.

    >>> Policy([                                                       # doctest: +SKIP
    ...     Rule("reads", "allow", tiers="read"),
    ...     Rule("big-refunds", "approve", tools="refund", when="amount > 1000"),
    ...     Rule("refunds", "allow", tools="refund", roles="support"),
    ... ])
    """

    def __init__(
        self,
        rules: Sequence[AnyRule | RuleFn] = (),
        *,
        mode: Mode = "first-match",
        source: str | None = None,
    ) -> None:
        if mode not in _MODES:
            raise PolicyError(f"mode must be 'first-match' or 'deny-overrides', got {mode!r}")
        built: list[AnyRule] = []
        seen: set[str] = set()
        for r in rules:
            rule: AnyRule
            if isinstance(r, (Rule, PythonRule)):
                rule = r
            elif callable(r):
                rule = PythonRule(getattr(r, "__name__", "python-rule"), r)
            else:
                raise PolicyError(f"not a rule: {r!r}")
            if rule.name in seen:
                raise PolicyError(f"two rules are named {rule.name!r}; names must be unique")
            seen.add(rule.name)
            built.append(rule)
        self.rules: tuple[AnyRule, ...] = tuple(built)
        self.mode: Mode = mode
        self.source = source

    def __repr__(self) -> str:
        src = f", source={self.source!r}" if self.source else ""
        return f"Policy({len(self.rules)} rules, mode={self.mode!r}{src})"

    # decisions -----------------------------------------------------------------------------

    def decide(self, tool: Tool, args: dict[str, Any], ctx: RunContext) -> PolicyDecision:
        chosen: PolicyDecision | None = None
        for rule in self.rules:
            try:
                decision = rule.decide(tool, args, ctx)
            except Exception as exc:  # noqa: BLE001 - a broken rule must deny, never allow
                return PolicyDecision(
                    "deny", rule.name, f"policy rule {rule.name!r} could not be evaluated: {exc}"
                )
            if decision is None:
                continue
            if self.mode == "first-match":
                return decision
            if chosen is None or _SEVERITY[decision.effect] > _SEVERITY[chosen.effect]:
                chosen = decision
        if chosen is not None:
            return chosen
        return PolicyDecision("deny", DEFAULT_DENY, "no policy rule allows this call")

    def visible(self, tool: Tool, ctx: RunContext) -> bool:
        """False only when every call of `tool` would be denied for this run, whatever the
        arguments."""
        for rule in self.rules:
            try:
                could = rule.could_match(tool, ctx)
            except Exception:  # noqa: BLE001 - unknown at list time; decide() will fail closed
                could = UNKNOWN
            if could is False:
                continue
            effect = rule.effect
            if self.mode == "first-match":
                if effect is None or effect != "deny":
                    return True  # some call could reach a non-deny rule
                if could is True:
                    return False  # every remaining call stops at this deny rule
            else:
                if effect == "deny" and could is True:
                    return False  # deny overrides everything for every call
        if self.mode == "deny-overrides":
            return any(
                r.effect != "deny" and _safe_could(r, tool, ctx) is not False for r in self.rules
            )
        return False

    # loading -------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<policy>") -> Policy:
        """Build a policy from parsed YAML/TOML data. Errors name the source, rule and field."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"{source}: a policy must be a mapping with a 'rules' list")
        _refuse_unknown(data, _TOP_KEYS, f"{source}")
        version = data.get("version", 1)
        if version != 1:
            raise PolicyError(f"{source}: field 'version': only version 1 is supported")
        mode = data.get("mode", "first-match")
        if mode not in _MODES:
            raise PolicyError(
                f"{source}: field 'mode': must be 'first-match' or 'deny-overrides', got {mode!r}"
            )
        raw_rules = data.get("rules")
        if not isinstance(raw_rules, list) or not raw_rules:
            raise PolicyError(f"{source}: field 'rules' must be a non-empty list of rules")
        rules: list[AnyRule] = []
        for i, raw in enumerate(raw_rules, start=1):
            label = f"{source}: rule #{i}"
            if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
                label += f" {raw['name']!r}"
            rules.append(_rule_from_dict(raw, label))
        try:
            return cls(rules, mode=mode, source=source)
        except PolicyError as exc:
            raise PolicyError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Load a policy from a ``.yaml``/``.yml`` (needs pyyaml) or ``.toml`` file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"{p}: cannot read policy file: {exc.strerror or exc}") from None
        suffix = p.suffix.lower()
        data: Any
        if suffix == ".toml":
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise PolicyError(f"{p}: invalid TOML: {exc}") from None
        elif suffix in (".yaml", ".yml"):
            data = _load_yaml(text, p)
        else:
            raise PolicyError(f"{p}: unknown policy file type; use .yaml, .yml or .toml")
        return cls.from_dict(data if data is not None else {}, source=str(p))


def _safe_could(rule: AnyRule, tool: Tool, ctx: RunContext) -> Tri:
    try:
        return rule.could_match(tool, ctx)
    except Exception:  # noqa: BLE001
        return UNKNOWN


_TOP_KEYS: Final = ("version", "mode", "rules")
_RULE_KEYS: Final = (
    "name",
    "effect",
    "tools",
    "namespaces",
    "tiers",
    "roles",
    "tenants",
    "users",
    "when",
    "reason",
)


def _refuse_unknown(data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PolicyError(
                f"{where}: unknown key {key!r}{hint}; allowed keys: {', '.join(allowed)}"
            )


def _rule_from_dict(raw: Any, label: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{label}: a rule must be a mapping, got {type(raw).__name__}")
    _refuse_unknown(raw, _RULE_KEYS, label)
    for key in ("name", "effect"):
        if key not in raw:
            raise PolicyError(f"{label}: field {key!r} is required")
    kwargs: dict[str, Any] = {}
    for key in ("name", "effect", "when", "reason"):
        if key in raw and not isinstance(raw[key], str):
            raise PolicyError(
                f"{label}: field {key!r} must be a string, got {type(raw[key]).__name__}"
            )
    for key in ("tools", "namespaces", "tiers", "roles", "tenants", "users"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, (str, list)):
                raise PolicyError(
                    f"{label}: field {key!r} must be a string or a list of strings, "
                    f"got {type(value).__name__}"
                )
            kwargs[key] = value
    for field in ("effect", "when"):
        try:
            if field == "effect":
                _check_effect(raw["effect"])
            elif "when" in raw:
                parse_condition(raw["when"])
        except PolicyError as exc:
            raise PolicyError(f"{label}: field {field!r}: {exc}") from None
    try:
        return Rule(
            raw["name"],
            raw["effect"],
            when=raw.get("when"),
            reason=raw.get("reason", ""),
            **kwargs,
        )
    except PolicyError as exc:
        raise PolicyError(f"{label}: {exc}") from None


def _load_yaml(text: str, path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise PolicyError(
            f"{path}: YAML policies need PyYAML: pip install 'callgate[yaml]' (or use TOML)"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: invalid YAML: {exc}") from None
