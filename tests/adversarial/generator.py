"""A seeded generator of hostile tool calls, driven by each tool's exported schema.

`generate(target, n, seed)` builds `n` calls for one tool: a valid instance of its schema (drawn
with a bias towards boundaries), then one mutation from `MUTATIONS`. Mutations that a JSON value
cannot express (duplicate keys, NaN, lone surrogates, nesting or sizes around the limits,
malformed text) are spliced into the JSON text at a sentinel. Everything comes from one
`random.Random(seed)`, so a failing call is reproduced by its seed and index.

The generator does not decide what is valid: the oracle (`oracle.py`) does. A mutation that
happens to produce a valid call is simply checked as a valid call.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.adversarial.signatures import Target

SENTINEL = "@@adversarial-sentinel@@"
_SENTINEL_JSON = json.dumps(SENTINEL)

MAX_BYTES = 65_536
MAX_DEPTH = 32
MAX_ITEMS = 10_000

PATTERN_SAMPLES: dict[str, list[str]] = {
    "^[0-9]{5}$": ["75001", "10115", "00000", "99999"],
    "^[A-Z]{3}-[0-9]{4}$": ["ABC-1234", "ZZZ-0000", "QRS-9876"],
    "^[a-z]+$": ["abc", "x", "widget"],
    "^[a-z0-9.-]+$": ["api.example.com", "10.0.0.1", "db-1"],
    "^[0-9]{4}$": ["0000", "1234"],
}

STRINGS = [
    "Paris",
    "a",
    "naïve café",
    "日本語のテキスト",
    "emoji 😀 ok",
    "line\nbreak",
    'quote " and \\ backslash',
    "<script>alert(1)</script>",
    "'; DROP TABLE users;--",
    "../../etc/passwd",
    "\u202eevil\u202c",
    "zero\u200bwidth",
    "nul\x00inside",
    "sep\u2028line",
    "\ufeffbom",
    "%00%2e%2e",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "null",
    "true",
    "0",
    "NaN",
    "e\u0301\u0301\u0301",
    "\U0010fffd",
    "  padded  ",
]

WRONG_VALUES: list[Any] = [0, -7, 1.5, True, False, None, "text", [], [1, "a"], {}, {"x": 1}]

UNKNOWN_KEYS = [
    "delete_all",
    "__proto__",
    "constructor",
    "",
    " ",
    "\u202eadmin",
    "$ref",
    "role",
    "k" * 300,
    "nul\x00key",
]

NUMERIC_STRINGS = ["{v}", " {v} ", "{v}.0", "+{v}", "0x1f", "1_000", "1e3", "١٢", "--1"]
BOOLISH = [0, 1, 2, -1, "true", "false", "yes", "on", "1", "0", "True"]
HUGE_NUMBERS = [
    "1e308",
    "-1e308",
    "5e-324",
    "-0.0",
    "9223372036854775808",
    "1" + "0" * 40,
    "9" * 400,
    "-" + "9" * 400,
]
NON_OBJECT_ROOTS = ["[]", "[{}]", '"text"', "1", "-1.5", "null", "true", '""', "[1, 2]"]


@dataclass(slots=True)
class Case:
    """One generated call: what is sent and which secrets must never come back."""

    call_id: str
    mutation: str
    arguments: Any
    secrets: tuple[str, ...] = ()
    #: a tool name other than the target's (the call must reach no tool)
    name: str | None = None


# --- valid instances from a schema -------------------------------------------------------------


class Instances:
    """Draws valid instances of a JSON Schema (the subset the suite's tools use)."""

    def __init__(self, schema: dict[str, Any], rng: random.Random) -> None:
        self.root = schema
        self.rng = rng

    def resolve(self, s: Any) -> Any:
        while isinstance(s, dict) and isinstance(s.get("$ref"), str):
            node: Any = self.root
            for part in s["$ref"][2:].split("/"):
                node = node[part]
            s = node
        return s

    def value(self, schema: Any, depth: int = 0) -> Any:
        s = self.resolve(schema)
        rng = self.rng
        if not isinstance(s, dict) or not s:
            return self.any_json(depth)
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return rng.choice(s["enum"])
        for key in ("anyOf", "oneOf"):
            if key in s:
                options = s[key]
                if depth > 3:  # prefer the non-recursive branch (null) deep down
                    options = [
                        o for o in options if self.resolve(o).get("type") == "null"
                    ] or options
                return self.value(rng.choice(options), depth + 1)
        t = s.get("type")
        if isinstance(t, list):
            t = rng.choice(t)
        maker = self._makers().get(t)
        if maker is None:
            return self.any_json(depth)
        return maker(s, depth)

    def _makers(self) -> dict[Any, Callable[[dict[str, Any], int], Any]]:
        return {
            "object": self.obj,
            "array": self.array,
            "string": self.string,
            "integer": self.integer,
            "number": self.number,
            "boolean": lambda s, d: self.rng.random() < 0.5,
            "null": lambda s, d: None,
        }

    def obj(self, s: dict[str, Any], depth: int) -> dict[str, Any]:
        rng = self.rng
        props = s.get("properties", {})
        required = set(s.get("required", ()))
        out: dict[str, Any] = {}
        for k, sub in props.items():
            if k in required or (depth < 4 and rng.random() < 0.5):
                out[k] = self.value(sub, depth + 1)
        extra = s.get("additionalProperties")
        if isinstance(extra, dict) and not props:
            for k in rng.sample(["a", "slot-1", "k", "日本", "x y"], rng.randint(0, 3)):
                out[k] = self.value(extra, depth + 1)
        elif extra is True and rng.random() < 0.4:
            out["extra_" + rng.choice("abc")] = self.any_json(depth + 1)
        return out

    def array(self, s: dict[str, Any], depth: int) -> list[Any]:
        prefix = s.get("prefixItems")
        if isinstance(prefix, list):
            return [self.value(p, depth + 1) for p in prefix]
        lo = s.get("minItems", 0)
        hi = min(s.get("maxItems", 4), lo + (3 if depth < 4 else 0))
        return [self.value(s.get("items", {}), depth + 1) for _ in range(self.rng.randint(lo, hi))]

    def string(self, s: dict[str, Any], depth: int) -> str:
        if "pattern" in s:
            return self.rng.choice(PATTERN_SAMPLES[s["pattern"]])
        lo = s.get("minLength", 0)
        hi = s.get("maxLength", 10_000)
        fits = [x for x in STRINGS if lo <= len(x) <= hi]
        if fits and self.rng.random() < 0.9:
            return self.rng.choice(fits)
        return "x" * self.rng.randint(lo, min(hi, lo + 5))

    def integer(self, s: dict[str, Any], depth: int) -> int:
        lo = s.get("minimum", s.get("exclusiveMinimum", -1001) + 1)
        hi = s.get("maximum", s.get("exclusiveMaximum", 1001) - 1)
        step = s.get("multipleOf", 1)
        v = self.rng.choice([lo, hi, self.rng.randint(lo, hi)])
        return int(v - v % step + (step if v % step and v - v % step < lo else 0))

    def number(self, s: dict[str, Any], depth: int) -> float:
        lo = float(s.get("minimum", -1e6))
        hi = float(s.get("maximum", 1e6))
        if "exclusiveMinimum" in s:
            lo = s["exclusiveMinimum"] + 1e-3
        return self.rng.choice([lo, hi, round(self.rng.uniform(lo, hi), 3), 1, 0.5])

    def any_json(self, depth: int) -> Any:
        rng = self.rng
        pick = rng.randrange(6 if depth < 3 else 4)
        if pick == 0:
            return rng.choice(STRINGS)
        if pick == 1:
            return rng.choice([0, 1, -5, 2**40, 3.25, -0.5])
        if pick == 2:
            return rng.choice([True, False, None])
        if pick == 3:
            return rng.choice(["", "k"])
        if pick == 4:
            return [self.any_json(depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(["a", "b", "日本"]): self.any_json(depth + 1) for _ in range(2)}


# --- paths inside a value ----------------------------------------------------------------------

Path = tuple[str | int, ...]


def nodes(value: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    """Every (path, node) in a JSON value, the root first."""
    out: list[tuple[Path, Any]] = [(path, value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out += nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += nodes(v, (*path, i))
    return out


def replaced(value: Any, path: Path, new: Any) -> Any:
    """A copy of `value` with the node at `path` replaced (copying only along the path)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        out[head] = replaced(value[head], rest, new)
        return out
    items = list(value)
    items[head] = replaced(items[head], rest, new)  # type: ignore[index]
    return items


def secret(rng: random.Random) -> tuple[str, str]:
    """A secret in one of the shapes the redaction detector knows, and its random core."""
    core = "".join(rng.choices(string.ascii_letters + string.digits, k=24))
    digit_core = core[:-1] + str(rng.randrange(10))
    shapes = [
        f"sk-proj-{core}",
        f"ghp_{core}{core[:12]}",
        f"Bearer {digit_core}",
        f"postgresql://admin:{core}@db.internal:5432/prod",
        f"password={core}",
        f"xoxb-{core}",
    ]
    shape = rng.choice(shapes)
    return shape, (digit_core if shape.startswith("Bearer") else core)


# --- mutations ---------------------------------------------------------------------------------

Mutated = tuple[Any, tuple[str, ...]]


class Mutator:
    """Turns one valid instance into the arguments of one hostile call."""

    def __init__(self, target: Target, rng: random.Random) -> None:
        self.rng = rng
        self.sensitive = target.sensitive
        self.tool_name = target.tool.name
        #: set by `wrong_tool_name` for the call being made
        self.name: str | None = None

    # helpers -------------------------------------------------------------------------------

    def text(self, value: Any) -> str:
        """JSON text, with non-ASCII written out or escaped (both reach real gates)."""
        if self.rng.random() < 0.5:
            return json.dumps(value, ensure_ascii=False)
        return json.dumps(value, separators=(",", ":"))

    def splice(self, value: Any, path: Path, raw: str) -> str:
        """JSON text of `value` with the node at `path` written as the raw text `raw`."""
        return self.text(replaced(value, path, SENTINEL)).replace(_SENTINEL_JSON, raw, 1)

    def pick(self, value: Any, want: Callable[[Path, Any], bool]) -> tuple[Path, Any] | None:
        """A random node that `want`s (path, node), at any depth; None if there is none."""
        found = [(p, v) for p, v in nodes(value) if want(p, v)]
        return self.rng.choice(found) if found else None

    def deliver(self, value: Any) -> Any:
        """Text most of the time; an already decoded object (Anthropic, Gemini) sometimes."""
        return value if self.rng.random() < 0.2 else self.text(value)

    # value-level mutations -----------------------------------------------------------------

    def valid(self, v: Any) -> Mutated | None:
        return self.deliver(v), ()

    def wrong_type(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: bool(p))
        if p is None:
            return None
        return self.deliver(replaced(v, p[0], self.rng.choice(WRONG_VALUES))), ()

    def unknown_key(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: isinstance(x, dict))
        assert p is not None  # the root is an object
        path, node = p
        names = [str(k) for k in node]
        key = self.rng.choice(UNKNOWN_KEYS + [n + "s" for n in names] + [n.upper() for n in names])
        secrets: tuple[str, ...] = ()
        roll = self.rng.random()
        if roll < 0.01:  # a name near the size limit
            key = "k" * self.rng.choice([2_000, 30_000])
        elif roll < 0.06:  # a secret as the name: the error names unknown keys
            key, core = secret(self.rng)
            secrets = (core,)
        if key in node:
            key += "_x"
        extra = self.rng.choice([True, 1, "x", {"nested": 1}, [1]])
        return self.deliver(replaced(v, path, {**node, key: extra})), secrets

    def missing_required(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: isinstance(x, dict) and bool(x))
        if p is None:
            return None
        path, node = p
        gone = self.rng.choice(list(node))
        return self.deliver(replaced(v, path, {k: x for k, x in node.items() if k != gone})), ()

    def hostile_string(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: isinstance(x, str))
        if p is None:
            return None
        bad = self.rng.choice(STRINGS[4:] + ["\x00", "\u202e", "\u0000" * 3, "a\ud7ffb"])
        return self.deliver(replaced(v, p[0], bad)), ()

    def null_for_optional(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: bool(p) and isinstance(p[-1], str))
        if p is None:
            return None
        return self.deliver(replaced(v, p[0], None)), ()

    def number_as_string(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: type(x) in (int, float) and bool(p))
        if p is None:
            return None
        form = self.rng.choice(NUMERIC_STRINGS).format(v=p[1])
        return self.deliver(replaced(v, p[0], form)), ()

    def bool_as_int(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: type(x) in (bool, int) and bool(p))
        if p is None:
            return None
        new: Any = self.rng.choice(BOOLISH) if type(p[1]) is bool else self.rng.random() < 0.5
        return self.deliver(replaced(v, p[0], new)), ()

    def secret_echo(self, v: Any) -> Mutated | None:
        """A secret where it does not fit (a number, a constrained string, an unknown key, a
        sensitive parameter): the error must not show it."""
        shape, core = secret(self.rng)
        p = self.pick(v, lambda p, x: bool(p) and not isinstance(x, dict | list))
        if p is None or self.rng.random() < 0.2:
            return self.deliver({**v, "apiKey_extra": shape}), (core,)
        return self.deliver(replaced(v, p[0], shape)), (core,)

    def sensitive_value(self, v: Any) -> Mutated | None:
        if not self.sensitive:
            return None
        shape, core = secret(self.rng)
        if self.rng.random() < 0.5:  # a value only its parameter's annotation marks secret
            shape = core
        name = self.rng.choice(sorted(self.sensitive))
        bad = self.rng.choice([shape, [shape], {"v": shape}, 12345678, shape[:7]])
        other = self.rng.choice([{}, {"user_id": 5}, {"zz": 1}])
        secrets = (core,) if isinstance(bad, list | dict) or bad == shape else ()
        return self.deliver({**v, **other, name: bad}), secrets

    # text-level mutations ------------------------------------------------------------------

    def malformed(self, v: Any) -> Mutated | None:
        t = self.text(v)
        rng = self.rng
        cut = rng.randrange(1, max(2, len(t)))
        forms = [
            t[:cut],
            t[:cut] + t[cut + 1 :],
            t[:-1] + ",}",
            t.replace('"', "'"),
            "// c\n" + t,
            t + t,
            t + " x",
            t.replace(":", "=", 1),
            t.replace("true", "True").replace("null", "None"),
            '{"a": "\\x41"}',
            '{"a": "ctrl\x01char"}',
            "{a: 1}",
            "\x00" + t,
        ]
        return rng.choice(forms), ()

    def duplicate_key(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: isinstance(x, dict) and bool(x))
        if p is None:
            return None
        path, node = p
        key = self.rng.choice(list(node))
        again = node[key] if self.rng.random() < 0.5 else self.rng.choice(WRONG_VALUES)
        pairs = [*node.items(), (key, again)]
        self.rng.shuffle(pairs)
        raw = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(x)}" for k, x in pairs) + "}"
        return self.splice(v, path, raw), ()

    def non_finite(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: bool(p) and not isinstance(x, dict | list | str))
        path = p[0] if p else ("x",)
        base = v if p else {**v, "x": 0}
        raw = self.rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1E+999"])
        return self.splice(base, path, raw), ()

    def huge_number(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: type(x) in (int, float) and bool(p))
        if p is None:
            return None
        return self.splice(v, p[0], self.rng.choice(HUGE_NUMBERS)), ()

    def lone_surrogate(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: isinstance(x, str))
        forms = ['"ab\\ud800cd"', '"\\udc00"', '"\\ud83d"', '"x\\udfff\\ud800"']
        if p is None or self.rng.random() < 0.2:
            key = self.rng.choice(["\\ud800", "k\\udc01"])
            t = self.text(v)
            return ('{"' + key + '": 1, ' + t[1:]) if len(t) > 2 else '{"' + key + '": 1}', ()
        if self.rng.random() < 0.3:  # a raw lone surrogate in the text itself
            return self.text(replaced(v, p[0], "raw\ud800")), ()
        return self.splice(v, p[0], self.rng.choice(forms)), ()

    def deep_nesting(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: bool(p))
        path = p[0] if p else ("payload",)
        depth = self.rng.choice([MAX_DEPTH - 3, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 64, 150])
        if self.rng.random() < 0.5:
            raw = "[" * depth + "1" + "]" * depth
        else:
            raw = '{"a": ' * depth + "1" + "}" * depth
        return self.splice(v if p else {**v, "payload": 0}, path, raw), ()

    def many_items(self, v: Any) -> Mutated | None:
        p = self.pick(v, lambda p, x: bool(p))
        path = p[0] if p else ("payload",)
        n = self.rng.choice([MAX_ITEMS - 20, MAX_ITEMS + 1, 3 * MAX_ITEMS])
        item = self.rng.choice(["1", '"a"', "{}"])
        raw = "[" + ",".join([item] * n) + "]"
        return self.splice(v if p else {**v, "payload": 0}, path, raw), ()

    def huge_string(self, v: Any) -> Mutated | None:
        """A string that brings the text to just under, at or just over the byte limit, in
        characters of 1, 2 or 4 UTF-8 bytes."""
        p = self.pick(v, lambda p, x: isinstance(x, str))
        path = p[0] if p else ("note",)
        base = v if p else {**v, "note": ""}
        ch = self.rng.choice(["x", "é", "😀"])
        width = len(ch.encode())
        rest = len(self.splice(base, path, '""').encode())
        n = (MAX_BYTES - rest) // width + self.rng.choice([-1, 0, 1, 2])
        return self.splice(base, path, '"' + ch * max(n, 0) + '"'), ()

    def non_object_root(self, v: Any) -> Mutated | None:
        if self.rng.random() < 0.2:
            return self.rng.choice([[v], None, 5, b"{}", (1, 2), {1: "a"}, {None: 1}]), ()
        return self.rng.choice(NON_OBJECT_ROOTS), ()

    def wrong_tool_name(self, v: Any) -> Mutated | None:
        """Valid arguments under a name that is not the tool's: near misses, hostile names."""
        n = self.tool_name
        shape, core = secret(self.rng)
        # Cyrillic look-alikes of the first Latin letters that have one
        homoglyph = n.translate(str.maketrans("aeoc", "\u0430\u0435\u043e\u0441"))
        names = [
            n.upper(),
            n + " ",
            " " + n,
            n + "\x00",
            "\u202e" + n,
            n[:-1],
            n + "s",
            "../" + n,
            "functions." + n,
            n + "()",
            homoglyph,
            "x" * 500,
            "",
            shape,
        ]
        self.name = self.rng.choice([x for x in names if x != n])
        return self.deliver(v), (core,) if self.name == shape else ()


#: mutation name -> relative weight (the expensive, size-bound ones are rarer)
MUTATIONS: dict[str, float] = {
    "valid": 20,
    "wrong_type": 10,
    "unknown_key": 12,
    "missing_required": 6,
    "hostile_string": 6,
    "null_for_optional": 5,
    "number_as_string": 5,
    "bool_as_int": 5,
    "secret_echo": 6,
    "sensitive_value": 3,
    "malformed": 5,
    "duplicate_key": 4,
    "non_finite": 3,
    "huge_number": 2,
    "lone_surrogate": 3,
    "deep_nesting": 2,
    "non_object_root": 2,
    "many_items": 0.15,
    "huge_string": 0.3,
    "wrong_tool_name": 2,
}


def generate(target: Target, n: int, seed: int) -> list[Case]:
    """`n` calls for `target`, deterministic in `seed`."""
    rng = random.Random(seed)
    inst = Instances(target.tool.spec.parameters, rng)
    mut = Mutator(target, rng)
    names = list(MUTATIONS)
    weights = list(MUTATIONS.values())
    out: list[Case] = []
    for i in range(n):
        base = inst.value(target.tool.spec.parameters)
        mut.name = None
        for name in rng.choices(names, weights, k=4):
            made = getattr(mut, name)(base)
            if made is not None:
                break
        else:
            name, made = "valid", mut.valid(base)
        out.append(Case(f"{target.tool.name}-{seed}-{i}", name, made[0], made[1], mut.name))
    return out
