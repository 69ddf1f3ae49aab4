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
``tool.version`` the tool; ``provenance.<param>`` (the source of that sink argument:
``"user"``, ``"named_object"``, ``"trusted_tool"``, ``"approved"``, ``"untrusted"``,
``"constant"``), ``provenance.in_scope`` and ``provenance.untrusted`` (the untrusted
parameters) are known inside `ProvenanceCheck(rules=policy)` only; anywhere else such a rule
denies the call rather than guess. Literals: strings, numbers, ``true``, ``false``, ``null``
and lists.

An absent argument (or null) never satisfies an ordering or text comparison, so ``amount > 1000``
does not match a call without an amount. A comparison between incompatible types (a string and a
number) is a policy bug: the call is denied, with the rule named, instead of guessing.

List time. `Policy.visible(tool, ctx)` evaluates the same rules with the arguments unknown, using
three-valued logic: a tool is hidden only when every possible call would be denied for this run.

The condition language itself (parser and evaluator) lives in `callgate.policy.conditions`;
its public names are importable from here as before.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

from typing_extensions import TypedDict, Unpack

from callgate.context import RunContext
from callgate.gate.protocols import SEVERITY, Effect, PolicyDecision
from callgate.policy.conditions import (
    UNKNOWN,
    ConditionError,
    PolicyError,
    Tri,
    parse_condition,
    tool_tier,
)
from callgate.policy.conditions import Condition as Condition
from callgate.tools.definition import Tool

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
_GLOB_CHARS: Final = frozenset("*?[")


class DefaultPolicy:
    """Read-only tools run; destructive tools need approval; other tools run."""

    # decisions are immutable, so the three possible ones are built once
    _DESTRUCTIVE = PolicyDecision(
        "approve", "default:destructive", "destructive tools need approval"
    )
    _READ_ONLY = PolicyDecision("allow", "default:read_only")
    _OTHER = PolicyDecision("allow", "default:other")
    #: `visible` is always True: asking costs less than the gate's memo lookup
    cheap_visibility = True

    def decide(self, tool: Tool, args: dict[str, Any], ctx: RunContext) -> PolicyDecision:
        ann = tool.spec.annotations
        if ann.destructive:
            return self._DESTRUCTIVE
        if ann.read_only:
            return self._READ_ONLY
        return self._OTHER

    def visible(self, tool: Tool, ctx: RunContext) -> bool:
        return True


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


SELECTOR_FIELDS: Final = ("tools", "namespaces", "tiers", "roles", "tenants", "users")


class Selectors(TypedDict, total=False):
    """The keywords `Rule` and `PythonRule` share to say which tools and runs they are about:
    each a name or a list of names (``tools`` may hold globs); an absent one matches all."""

    tools: str | Iterable[str] | None
    namespaces: str | Iterable[str] | None
    tiers: str | Iterable[str] | None
    roles: str | Iterable[str] | None
    tenants: str | Iterable[str] | None
    users: str | Iterable[str] | None


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

    def __init__(self, owner: str, given: Selectors) -> None:
        # the rules take these as **keywords: a misspelt one must still be refused, as a
        # misspelt named parameter would be
        for key in given:
            if key not in SELECTOR_FIELDS:
                raise TypeError(f"{owner}() got an unexpected keyword argument {key!r}")
        self.tools = _names(given.get("tools"), "tools")
        self.namespaces = _names(given.get("namespaces"), "namespaces")
        self.tiers = _names(given.get("tiers"), "tiers")
        self.roles = frozenset(_names(given.get("roles"), "roles"))
        self.tenants = frozenset(_names(given.get("tenants"), "tenants"))
        self.users = frozenset(_names(given.get("users"), "users"))
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
        when: str | None = None,
        reason: str = "",
        **selectors: Unpack[Selectors],
    ) -> None:
        self.name = _check_name(name)
        self.effect = _check_effect(effect)
        self.selectors = _Selectors("Rule", selectors)
        try:
            self.condition = parse_condition(when) if when is not None else None
        except PolicyError as exc:  # name the rule whose condition (or regex) was refused
            raise PolicyError(f"rule {self.name!r}: {exc}") from None
        if not isinstance(reason, str):
            raise PolicyError(f"field 'reason' must be a string, got {type(reason).__name__}")
        self.reason = reason

    def __repr__(self) -> str:
        when = f", when={self.condition.text!r}" if self.condition else ""
        return f"Rule({self.name!r}, {self.effect!r}, {self.selectors.describe()}{when})"

    def decide(
        self,
        tool: Tool,
        args: Mapping[str, Any],
        ctx: RunContext,
        provenance: Mapping[str, Any] | None = None,
    ) -> PolicyDecision | None:
        if not self.selectors.match(tool, ctx):
            return None
        if self.condition is not None and not self.condition.evaluate(tool, args, ctx, provenance):
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
        visible: VisibleFn | None = None,
        **selectors: Unpack[Selectors],
    ) -> None:
        if not callable(fn):
            raise PolicyError(f"rule {name!r}: fn must be callable")
        self.name = _check_name(name)
        self.fn = fn
        self.selectors = _Selectors("PythonRule", selectors)
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
        chosen = self._evaluate(tool, args, ctx, None)
        if chosen is not None:
            return chosen
        return PolicyDecision("deny", DEFAULT_DENY, "no policy rule allows this call")

    def decide_provenance(
        self,
        tool: Tool,
        args: dict[str, Any],
        ctx: RunContext,
        provenance: Mapping[str, Any],
    ) -> PolicyDecision | None:
        """The decision of rules that read ``provenance.*`` (``provenance.to == "untrusted"``,
        ``provenance.in_scope == false``), as `ProvenanceCheck(rules=policy)` asks for it.

        None when no rule matches: the check's own actions then apply (no default deny here;
        the gate's main policy already decided whether the call may happen at all).
        """
        return self._evaluate(tool, args, ctx, provenance)

    def _evaluate(
        self,
        tool: Tool,
        args: dict[str, Any],
        ctx: RunContext,
        provenance: Mapping[str, Any] | None,
    ) -> PolicyDecision | None:
        chosen: PolicyDecision | None = None
        for rule in self.rules:
            try:
                if isinstance(rule, Rule):
                    decision = rule.decide(tool, args, ctx, provenance)
                else:
                    decision = rule.decide(tool, args, ctx)
            except Exception as exc:  # noqa: BLE001 - a broken rule must deny, never allow
                return PolicyDecision(
                    "deny", rule.name, f"policy rule {rule.name!r} could not be evaluated: {exc}"
                )
            if decision is None:
                continue
            if self.mode == "first-match":
                return decision
            if chosen is None or SEVERITY[decision.effect] > SEVERITY[chosen.effect]:
                chosen = decision
        return chosen

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
    for key in SELECTOR_FIELDS:
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
