"""The policy condition language: the ``when`` expressions of `callgate.policy.engine` rules.

A condition such as ``amount > 1000 and ctx.tenant == "acme"`` is tokenized and parsed into a
small tree (never ``eval``-ed), then evaluated against a call's validated arguments, the run
context and the tool, with three-valued logic at list time (arguments unknown). The language is
described in `callgate.policy.engine`; it lives here so the rule engine stays one concern and this
parser/evaluator can be read (and fuzzed) on its own.

`PolicyError` and `tool_tier` live here too because the language raises the one and reads the
other (``tool.tier``); `callgate.policy.engine` re-exports them, so import them from there.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeAlias

from callgate.context import RunContext
from callgate.errors import CallgateError
from callgate.tools.definition import Tool

__all__ = [
    "UNKNOWN",
    "Condition",
    "ConditionError",
    "PolicyError",
    "Tri",
    "parse_condition",
    "tool_tier",
]


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
# the fixed-field scopes of a path: ctx.<field> and tool.<field> (how errors name them, fields)
_SCOPED_FIELDS: Final = {"ctx": ("context", _CTX_FIELDS), "tool": ("tool", _TOOL_FIELDS)}
_KEYWORDS: Final = frozenset(
    {"and", "or", "not", "in", "contains", "matches", "startswith", "endswith"}
)
_LITERALS: Final = {"true": True, "false": False, "null": None}
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


class _Regex:
    """The pattern after ``matches``, compiled with RE2: matching takes time linear in the
    text whatever the pattern, so a policy regex can never stall the gate on a hostile argument.
    RE2 refuses what only a backtracking engine can do (backreferences, lookaround); such a
    pattern is refused when the policy is loaded, naming the pattern and RE2's reason."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        try:
            import re2
        except ImportError:
            raise PolicyError(
                f"'matches' {pattern!r}: policy regular expressions run on the linear-time "
                "engine RE2: pip install 'callgate[sanitize]'"
            ) from None
        options = re2.Options()
        options.log_errors = False
        try:
            self._compiled = re2.compile(pattern, options)
        except re2.error as exc:
            reason = str(
                exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
            )
            raise PolicyError(
                f"bad regular expression {pattern!r} after 'matches': {reason} "
                "(patterns run on RE2, which has no backreferences or lookaround, so matching "
                "stays linear in the text)"
            ) from None

    def search(self, text: str) -> bool:
        return self._compiled.search(text) is not None


@dataclasses.dataclass(frozen=True, slots=True)
class _Cmp:
    op: str
    left: _Path | _Lit
    right: _Path | _Lit | _Regex


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
        return self._chain("or", self.and_expr)

    def and_expr(self) -> _Node:
        return self._chain("and", self.not_expr)

    def _chain(self, op: str, operand: Callable[[], _Node]) -> _Node:
        """``operand (op operand)*``: the one operand, or a `_BoolOp` over all of them."""
        items = [operand()]
        while self.peek().kind == "kw" and self.peek().value == op:
            self.take()
            items.append(operand())
        return items[0] if len(items) == 1 else _BoolOp(op, tuple(items))

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
            return _Cmp(op, left, _Regex(right.value))
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
    if head in _SCOPED_FIELDS:
        what, fields = _SCOPED_FIELDS[head]
        if len(parts) != 2 or parts[1] not in fields:
            raise PolicyError(
                f"unknown {what} field {text!r}: use one of "
                + ", ".join(f"{head}.{f}" for f in sorted(fields))
            )
        return _Path(head, parts[1:], text)
    if head == "provenance":
        if len(parts) != 2:
            raise PolicyError(
                f"{text!r}: write provenance.<parameter>, provenance.in_scope or "
                "provenance.untrusted"
            )
        return _Path("provenance", parts[1:], text)
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

    def evaluate(
        self,
        tool: Tool,
        args: Mapping[str, Any],
        ctx: RunContext,
        provenance: Mapping[str, Any] | None = None,
    ) -> bool:
        """True or False for a call; raises `ConditionError` on incompatible types, and when
        the condition reads ``provenance.*`` but no provenance check has run (fail closed)."""
        result = _eval(self._node, _Env(tool, args, ctx, provenance))
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
    #: the provenance check's view (provenance.<param> -> source); None outside that check
    provenance: Mapping[str, Any] | None = None


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
    if path.scope == "provenance":
        if env.args is None:
            return UNKNOWN
        if env.provenance is None:
            raise ConditionError(
                f"{path.text} is known only to ProvenanceCheck(rules=...): put this rule there"
            )
        return _normalise(env.provenance.get(path.parts[0]))
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
    if isinstance(node.right, _Regex):
        if isinstance(left, _Unknown):
            return UNKNOWN
        if left is None:
            return False
        if not isinstance(left, str):
            raise ConditionError(f"{_describe(node)}: 'matches' needs a string")
        return node.right.search(left)
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
        if isinstance(o, _Regex):
            return repr(o.pattern)
        return repr(o.value)

    return f"{side(node.left)} {node.op} {side(node.right)}"
