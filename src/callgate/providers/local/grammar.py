"""JSON Schema -> GBNF: the grammar that makes a local model's tool calls well-formed.

llama.cpp can restrict sampling to the strings of a GBNF grammar. Compiling each visible tool's
parameter schema into such a grammar means a small model *cannot* emit a call that does not
parse, names an unknown tool, misses a required parameter, invents a parameter or picks a value
outside an enum. That is "strict mode" for any local model.

The compiler is our own rather than llama.cpp's converter because the output format is part of
the decoding strategy: keys come in schema order, separators are fixed (`", "` and `": "`, the
style small models saw in training), strings have a length cap, and there is no free whitespace,
so a model can never loop on blanks. Keywords a context-free grammar cannot express cheaply
(`pattern`, `format`, `multipleOf`, `uniqueItems`, numeric bounds other than the sign) are left to
the validator that runs after decoding; `unsupported_keywords` lists them so callers can say so.
"""

from __future__ import annotations

import ctypes
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from callgate.errors import SchemaError
from callgate.jsonschema import Refs

__all__ = [
    "CallGrammar",
    "GrammarBuilder",
    "compile_call_grammar",
    "compile_schema",
    "gbnf_literal",
    "grammar_accepts",
    "unsupported_keywords",
]

#: Longest string value the grammar lets a model write; caps runaway generations.
DEFAULT_MAX_STRING = 128
#: Longest array the grammar accepts when the schema sets no `maxItems`. Numbers are capped too
#: (16 integer digits, 15 decimals, 3 exponent digits): a loop on one digit must end somewhere.
DEFAULT_MAX_ITEMS = 32

_UNSUPPORTED = ("pattern", "format", "multipleOf", "uniqueItems", "patternProperties")
_BOUNDS = ("maximum", "exclusiveMaximum")

_CHAR = r'[^"\\\x7F\x00-\x1F]'
_ESCAPE = r'"\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'

_PRIMITIVES: dict[str, str] = {
    "char": f"{_CHAR} | {_ESCAPE}",
    "boolean": '"true" | "false"',
    "null": '"null"',
    "uint": '"0" | [1-9] [0-9]{0,15}',
    "integer": '"-"? uint',
    "number": '"-"? unumber',
    "unumber": 'uint ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?',
    "value": "object-any | array-any | string-any | number | boolean | null",
    "object-any": '"{" ( string-any ": " value ( ", " string-any ": " value )* )? "}"',
    "array-any": '"[" ( value ( ", " value )* )? "]"',
}


def gbnf_literal(text: str) -> str:
    """`text` as a GBNF string literal (double quotes, escapes for quote, backslash, controls)."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_literal(value: Any) -> str:
    """The GBNF literal matching exactly `json.dumps(value)` in our fixed style."""
    return gbnf_literal(json.dumps(value, ensure_ascii=False))


@dataclass(slots=True)
class GrammarBuilder:
    """Accumulates named rules; `schema_rule` returns the rule name for a schema node.

    Rule names are derived from the path in the schema so that the grammar stays readable when a
    user prints it to find out why a model wrote what it wrote.
    """

    max_string: int = DEFAULT_MAX_STRING
    max_items: int = DEFAULT_MAX_ITEMS
    rules: dict[str, str] = field(default_factory=dict)
    _refs: Refs = field(default_factory=lambda: Refs({}))
    _def_rules: dict[str, str] = field(default_factory=dict)
    _used_primitives: set[str] = field(default_factory=set)
    _span_rules: dict[str, str] = field(default_factory=dict)

    # --- naming -------------------------------------------------------------------------------

    def _name(self, hint: str) -> str:
        base = re.sub(r"[^a-zA-Z0-9-]+", "-", hint).strip("-").lower() or "r"
        name, n = base, 1
        while name in self.rules or name in _PRIMITIVES:
            n += 1
            name = f"{base}-{n}"
        self.rules[name] = ""  # reserve
        return name

    def add(self, hint: str, body: str) -> str:
        name = self._name(hint)
        self.rules[name] = body
        return name

    def primitive(self, name: str) -> str:
        self._used_primitives.add(name)
        deps = {
            "integer": ("uint",),
            "number": ("unumber",),
            "unumber": ("uint",),
            "value": ("object-any", "array-any", "string-any", "number", "boolean", "null"),
            "object-any": ("string-any", "value"),
            "array-any": ("value",),
        }
        for d in deps.get(name, ()):
            if d not in self._used_primitives:
                if d == "string-any":
                    self.string_rule(None, None)
                else:
                    self.primitive(d)
        return name

    def string_rule(self, min_len: int | None, max_len: int | None) -> str:
        lo = max(0, min_len or 0)
        hi = self.max_string if max_len is None else min(max_len, self.max_string)
        hi = max(hi, lo)
        if lo == 0 and hi == self.max_string:
            name = "string-any"
            if name not in self.rules:
                self.primitive("char")
                self.rules[name] = f'"\\"" char{{0,{hi}}} "\\""'
            return name
        self.primitive("char")
        return self.add(f"string-{lo}-{hi}", f'"\\"" char{{{lo},{hi}}} "\\""')

    # --- schema compilation -------------------------------------------------------------------

    def set_defs(self, schema: dict[str, Any]) -> None:
        """Resolve the `$ref`s met from now on against `schema` (the one rule of
        `callgate.jsonschema`); each tool's definitions stay its own."""
        self._refs = Refs(schema)
        self._def_rules = {}

    def schema_rule(self, schema: Any, hint: str) -> str:
        """Compile one schema node and return the name of a rule matching its JSON values."""
        if schema is True or schema == {}:
            return self.primitive("value")
        if schema is False:
            raise SchemaError(f"{hint}: a 'false' schema accepts no value, so it cannot be called")
        if not isinstance(schema, dict):
            raise SchemaError(f"{hint}: schema nodes must be objects, got {type(schema).__name__}")

        if "x-spans" in schema:
            return self._spans(schema["x-spans"], hint)
        if "$ref" in schema:
            return self._ref(str(schema["$ref"]), hint)
        if "const" in schema:
            return self.add(hint, _json_literal(schema["const"]))
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise SchemaError(f"{hint}: 'enum' must be a non-empty list")
            return self.add(hint, " | ".join(_json_literal(v) for v in values))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                alts = schema[key]
                if not isinstance(alts, list) or not alts:
                    raise SchemaError(f"{hint}: '{key}' must be a non-empty list")
                base = {k: v for k, v in schema.items() if k != key}
                names = [
                    self.schema_rule({**base, **a} if isinstance(a, dict) else a, f"{hint}-{i}")
                    for i, a in enumerate(alts)
                ]
                return self.add(hint, " | ".join(names))
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self._deref(part))
            return self.schema_rule(merged, hint)

        typ = schema.get("type")
        if isinstance(typ, list):
            names = [self.schema_rule({**schema, "type": t}, f"{hint}-{t}") for t in typ]
            return self.add(hint, " | ".join(names))
        if typ is None:
            if "properties" in schema:
                typ = "object"
            elif "items" in schema:
                typ = "array"
            else:
                return self.primitive("value")
        return self._typed(schema, str(typ), hint)

    def _typed(self, schema: dict[str, Any], typ: str, hint: str) -> str:
        if typ == "string":
            return self.string_rule(schema.get("minLength"), schema.get("maxLength"))
        if typ == "integer":
            if _non_negative(schema):
                return self.primitive("uint")
            return self.primitive("integer")
        if typ == "number":
            if _non_negative(schema):
                return self.primitive("unumber")
            return self.primitive("number")
        if typ == "boolean":
            return self.primitive("boolean")
        if typ == "null":
            return self.primitive("null")
        if typ == "array":
            return self._array(schema, hint)
        if typ == "object":
            return self._object(schema, hint)
        raise SchemaError(f"{hint}: unknown JSON Schema type {typ!r}")

    def _array(self, schema: dict[str, Any], hint: str) -> str:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            parts = [self.schema_rule(s, f"{hint}-{i}") for i, s in enumerate(prefix)]
            return self.add(hint, '"[" ' + ' ", " '.join(parts) + ' "]"')
        item = self.schema_rule(schema.get("items", True), f"{hint}-item")
        lo = int(schema.get("minItems", 0))
        hi = int(schema.get("maxItems", max(self.max_items, lo)))
        if hi < lo:
            raise SchemaError(f"{hint}: maxItems ({hi}) is below minItems ({lo})")
        if hi == 0:
            return self.add(hint, '"[]"')
        rest_lo, rest_hi = max(lo - 1, 0), hi - 1
        rest = f'(", " {item}){{{rest_lo},{rest_hi}}}' if rest_hi > 0 else ""
        body = f'"[" {item} {rest} "]"'.replace("  ", " ")
        if lo == 0:
            body = f'"[" ( {item} {rest} )? "]"'.replace("  ", " ")
        return self.add(hint, body)

    def _object(self, schema: dict[str, Any], hint: str) -> str:
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            raise SchemaError(f"{hint}: 'properties' must be an object")
        if not props:
            extra = schema.get("additionalProperties", True)
            if extra is False:
                return self.add(hint, '"{}"')
            if isinstance(extra, dict) and extra:
                val = self.schema_rule(extra, f"{hint}-value")
                key = self.string_rule(1, None)
                return self.add(hint, f'"{{" ( {key} ": " {val} ( ", " {key} ": " {val} )* )? "}}"')
            return self.primitive("object-any")
        required = set(schema.get("required") or [])
        items: list[tuple[str, bool]] = []
        for pname, psub in props.items():
            val = self.schema_rule(psub, f"{hint}-{pname}")
            items.append((f"{_json_literal(pname)} {gbnf_literal(': ')} {val}", pname in required))
        # after[i]: the properties from i on, once something has been written (", " before each)
        # first[i]: the properties from i on, when nothing has been written yet
        n = len(items)
        after = [""] * (n + 1)
        first = [""] * (n + 1)
        for i in range(n - 1, -1, -1):
            kv, req = items[i]
            nxt = after[i + 1]
            if req:
                after[i] = self.add(f"{hint}-a{i}", f'", " {kv} {nxt}'.strip())
                first[i] = self.add(f"{hint}-f{i}", f"{kv} {nxt}".strip())
            else:
                after[i] = self.add(f"{hint}-a{i}", f'(", " {kv})? {nxt}'.strip())
                alt = first[i + 1] or '""'
                first[i] = self.add(f"{hint}-f{i}", f"{kv} {nxt} | {alt}".replace("  ", " "))
        return self.add(hint, f'"{{" {first[0]} "}}"')

    def _spans(self, spec: Any, hint: str) -> str:
        """A JSON string whose content is a contiguous run of words of a text, or one of a few
        whole values. `spec` is `{"chains": [[[word, separator], ...], ...], "values": [...]}`:
        each chain is a text cut into words, each with the separator that follows it. Rule
        `c_i` is "word i, optionally followed by its separator and c_i+1", so the alternatives
        of all `c_i` are exactly the runs that start at a word boundary. Shared by every
        parameter that uses the same spec (compiled once per grammar)."""
        key = json.dumps(spec, sort_keys=True)
        if key in self._span_rules:
            return self._span_rules[key]
        alts: list[str] = []
        for chain in spec.get("chains", []):
            names = [self._name(f"{hint}-w{i}") for i in range(len(chain))]
            for i, (word, sep) in enumerate(chain):
                body = _json_inner_literal(word)
                if i + 1 < len(chain):
                    # a word with digits (a date, an id, an amount) may start or continue a
                    # run but not end it: alone it is some other parameter's value
                    opt = "" if _HAS_DIGIT.search(word) else "?"
                    body += f" ( {_json_inner_literal(sep)} {names[i + 1]} ){opt}"
                self.rules[names[i]] = body
            alts += [n for n, (w, _) in zip(names, chain, strict=True) if not _alone(w, chain)]
        alts += [_json_inner_literal(v) for v in spec.get("values", [])]
        if not alts:
            return self.string_rule(None, None)
        name = self.add(f"{hint}-span", '"\\"" ( ' + " | ".join(alts) + ' ) "\\""')
        self._span_rules[key] = name
        return name

    def _deref(self, node: Any) -> Any:
        if isinstance(node, dict) and "$ref" in node:
            return self._lookup(str(node["$ref"]))
        return node

    def _lookup(self, ref: str) -> Any:
        try:
            return self._refs.resolve(ref)
        except SchemaError as e:
            raise SchemaError(f"unresolvable reference: {e}") from None

    def _ref(self, ref: str, hint: str) -> str:
        if ref in self._def_rules:
            return self._def_rules[ref]
        target = self._lookup(ref)
        # Reserve the name first so recursive schemas refer to the rule being built.
        name = self._name("def-" + ref.rsplit("/", 1)[-1])
        self._def_rules[ref] = name
        inner = self.schema_rule(target, f"{name}-body")
        self.rules[name] = inner
        return name

    # --- output -------------------------------------------------------------------------------

    def render(self, root: str) -> str:
        lines = [f"root ::= {root}"]
        lines += [f"{k} ::= {v}" for k, v in self.rules.items()]
        for p in sorted(self._used_primitives):
            if p not in self.rules:
                lines.append(f"{p} ::= {_PRIMITIVES[p]}")
        return "\n".join(lines) + "\n"


_HAS_DIGIT = re.compile(r"\d")


def _alone(word: str, chain: Sequence[Sequence[str]]) -> bool:
    """A digit word that ends its chain could only start a one-word run of itself."""
    return bool(_HAS_DIGIT.search(word)) and word == chain[-1][0]


def _json_inner_literal(text: str) -> str:
    """The GBNF literal of `text` as it appears inside a JSON string (escaped, no quotes)."""
    return gbnf_literal(json.dumps(text, ensure_ascii=False)[1:-1])


def _non_negative(schema: dict[str, Any]) -> bool:
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    return isinstance(lo, int | float) and not isinstance(lo, bool) and lo >= 0


def _merge(a: dict[str, Any], b: Any) -> dict[str, Any]:
    if not isinstance(b, dict):
        return a
    out = dict(a)
    for k, v in b.items():
        if k == "properties" and isinstance(v, dict):
            out["properties"] = {**out.get("properties", {}), **v}
        elif k == "required" and isinstance(v, list):
            out["required"] = sorted(set(out.get("required", [])) | set(v))
        else:
            out[k] = v
    return out


def compile_schema(schema: dict[str, Any], *, max_string: int = DEFAULT_MAX_STRING) -> str:
    """A complete GBNF grammar (root rule `root`) for the JSON values `schema` accepts."""
    b = GrammarBuilder(max_string=max_string)
    b.set_defs(schema)
    root = b.schema_rule(schema, "value-root")
    return b.render(root)


@dataclass(frozen=True, slots=True)
class CallGrammar:
    """A grammar for one tool call written as `{"name": "...", "arguments": {...}}`.

    `text` is the GBNF source; `tools` the names it allows, in order.
    """

    text: str
    tools: tuple[str, ...]


def compile_call_grammar(
    tools: Sequence[tuple[str, dict[str, Any]]],
    *,
    prefix: str = "",
    suffix: str = "",
    max_string: int = DEFAULT_MAX_STRING,
) -> CallGrammar:
    """Grammar for exactly one call to one of `tools` (name, parameters schema), wrapped in the
    literal `prefix`/`suffix`. The name and its arguments are tied together: once a model has
    written a tool's name, only that tool's arguments can follow."""
    if not tools:
        raise SchemaError("a call grammar needs at least one tool")
    b = GrammarBuilder(max_string=max_string)
    alts: list[str] = []
    for name, params in tools:
        b.set_defs(params)
        args = b.schema_rule(params, f"args-{name}")
        head = gbnf_literal(json.dumps(name) + ', "arguments": ')
        alts.append(f"{head} {args}")
    call = b.add("call", '"{\\"name\\": " ( ' + " | ".join(alts) + ' ) "}"')
    parts = [p for p in (gbnf_literal(prefix) if prefix else "", call) if p]
    if suffix:
        parts.append(gbnf_literal(suffix))
    return CallGrammar(b.render(" ".join(parts)), tuple(n for n, _ in tools))


def unsupported_keywords(schema: Any) -> set[str]:
    """Keywords in `schema` that the grammar does not enforce (checked after decoding)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in _UNSUPPORTED or k in _BOUNDS:
                    found.add(k)
                if k in ("minimum", "exclusiveMinimum") and not (
                    isinstance(v, int | float) and v == 0
                ):
                    found.add(k)
                if k not in ("enum", "const", "default", "examples"):
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return found


def grammar_accepts(llm: Any, gbnf: str, text: str) -> bool:
    """Whether llama.cpp's own grammar engine accepts `text` as a complete sentence of `gbnf`.

    `llm` is a `llama_cpp.Llama` (a vocabulary-only one is enough). The text's tokens go one by
    one through a grammar sampler, rejected as soon as one is disallowed; at the end the grammar
    must allow the end-of-sequence token. This tests a grammar against the engine that will
    enforce it, not against a second implementation of GBNF.
    """
    import llama_cpp as lib

    vocab = llm._model.vocab
    smpl = lib.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
    if not smpl:
        raise SchemaError("llama.cpp refused the grammar")
    eos = llm.token_eos()
    try:
        tokens = list(llm.tokenize(text.encode(), add_bos=False, special=False))
        for tok in [*tokens, eos]:
            data = (lib.llama_token_data * 1)(lib.llama_token_data(tok, 0.0, 0.0))
            arr = lib.llama_token_data_array(data, 1, -1, False)
            lib.llama_sampler_apply(smpl, ctypes.byref(arr))
            if math.isinf(data[0].logit):
                return False
            if tok != eos:
                lib.llama_sampler_accept(smpl, tok)
        return True
    finally:
        lib.llama_sampler_free(smpl)
