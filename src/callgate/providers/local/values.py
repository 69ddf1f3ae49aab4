"""Values a local model may copy from the conversation, and the grammars that offer them.

A 135M model writes "$2,000,000" as `2` and an id it has just read as something close to it. A
grammar cannot make it *want* the right value, but it can take the wrong ones away: when the
conversation holds numbers, or strings of the shape a parameter demands (its `pattern` or a
`format` such as a date), the parameter's grammar is narrowed to exactly those values, written
as the parameter needs them ("$2,000,000" → 2000000, "3%" → 3 or 0.03). Where the conversation
has no value of the right shape, the parameter is left free.

The same idea shapes the final answer: after tools have returned data, the answer is one plain
sentence (no code fences, no lists, no markup) that must mention at least one value a tool
returned, so it is grounded in the results and cannot ramble or echo error text at length.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from callgate.messages import Message
from callgate.providers.local.grammar import gbnf_literal

__all__ = [
    "Candidates",
    "answer_grammar",
    "answer_values",
    "answer_words",
    "conversation_numbers",
    "fillable",
    "ground_schema",
    "keyed_by",
    "mentioned",
    "only_empty_results",
    "unused_numbers",
]

_NUMBER = re.compile(
    r"(?<![\w.\-/])(?P<sign>-?)[$€£]?\s?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?!\d|,\d|[-/]\d|\.\d)"
    r"(?:\s?(?P<suffix>%|percent\b|k\b|thousand\b|million\b|billion\b))?",
    re.IGNORECASE,
)
_SCALE = {"k": 1e3, "thousand": 1e3, "million": 1e6, "billion": 1e9}
_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "dozen": 12,
}
_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)
_FORMATS = {
    "date": r"\d{4}-\d{2}-\d{2}",
    "date-time": r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:\d{2})?",
    "time": r"\d{2}:\d{2}(?::\d{2})?",
    "email": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
}
_FRACTION_WORDS = ("fraction", "decimal", "between 0 and 1", "ratio")
#: Most values offered for one parameter: more would make the grammar large for no benefit.
MAX_CANDIDATES = 24


@dataclass(frozen=True, slots=True)
class Number:
    """A number as written in the conversation; `percent` when it carried a % sign."""

    value: float
    percent: bool = False


@dataclass(frozen=True, slots=True)
class Candidates:
    """What the conversation offers: its numbers, its text (for pattern/format matches), and,
    for free strings, the user's words (`chains`) and the strings tools returned (`values`)."""

    numbers: tuple[Number, ...]
    text: str
    chains: tuple[tuple[tuple[str, str], ...], ...] = ()
    values: tuple[str, ...] = ()
    user_text: str = ""

    @classmethod
    def from_messages(cls, messages: Sequence[Message]) -> Candidates:
        """Values come from what the user wrote and what tools returned, never from the
        assistant's own earlier guesses or the system prompt's fixed text."""
        texts = [m.content for m in messages if m.role in ("user", "tool")]
        text = "\n".join(texts)
        chains = [c for m in messages if m.role == "user" for c in word_chains(m.content)]
        strings: list[str] = []
        for m in messages:
            if m.role == "tool" and m.tool_result is not None and not m.tool_result.is_error:
                strings += [v for v in _strings_in(m.content) if 2 <= len(v) <= 80]
        unique = tuple(dict.fromkeys(strings))[:MAX_STRING_VALUES]
        said = "\n".join(m.content for m in messages if m.role == "user")
        return cls(tuple(conversation_numbers(text)), text, tuple(chains), unique, said)

    def spans(self) -> dict[str, Any] | None:
        """The `x-spans` grammar spec for a free string, or None when there is nothing."""
        if not self.chains and not self.values:
            return None
        return {"chains": [list(map(list, c)) for c in self.chains], "values": list(self.values)}


_WORD_RE = re.compile(r"[^\s\"\\]+")
_TRAIL = ".,;:!?)"
#: Most whole strings from tool results offered to a free string parameter.
MAX_STRING_VALUES = 40


def word_chains(text: str) -> list[tuple[tuple[str, str], ...]]:
    """`text` cut into runs of words, each word with the separator that follows it (a space,
    or punctuation and a space). A line break or a quote ends a run: a value copied from the
    user never spans two lines."""
    chains: list[tuple[tuple[str, str], ...]] = []
    for line in text.splitlines():
        words: list[tuple[str, str]] = []
        matches = list(_WORD_RE.finditer(line))
        for i, m in enumerate(matches):
            word = m.group(0)
            core = word.rstrip(_TRAIL) or word
            end = matches[i + 1].start() if i + 1 < len(matches) else m.end()
            sep = word[len(core) :] + line[m.end() : end]
            words.append((core, sep))
            if i + 1 < len(matches) and (sep.strip(" " + _TRAIL) or len(sep) > 3):
                chains.append(tuple(words))
                words = []
        if words:
            chains.append(tuple(words))
    return chains


def _strings_in(content: str) -> list[str]:
    try:
        data = json.loads(content)
    except ValueError:
        return []
    return [v for v in _scalars(data) if not _is_number(v)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def conversation_numbers(text: str) -> list[Number]:
    """Every number written in `text`, normalised: thousands separators and currency signs
    dropped, "2 million" scaled, "3%" marked as a percentage, small number words read."""
    found: list[Number] = []
    for m in _NUMBER.finditer(text):
        value = float(m.group("int").replace(",", "") + (m.group("frac") or ""))
        if m.group("sign"):
            value = -value
        suffix = (m.group("suffix") or "").lower()
        if suffix in _SCALE:
            value *= _SCALE[suffix]
        found.append(Number(value, percent=suffix in ("%", "percent")))
    found += [Number(float(_WORDS[w.lower()])) for w in _WORD.findall(text)]
    unique: dict[Number, None] = dict.fromkeys(found)
    return list(unique)


def _numeric_options(schema: dict[str, Any], numbers: Iterable[Number]) -> list[int | float]:
    """The conversation's numbers a numeric parameter can take, written as it needs them."""
    integer = schema.get("type") == "integer"
    desc = str(schema.get("description", "")).lower()
    hi = schema.get("maximum")
    fraction_only = isinstance(hi, int | float) and hi <= 1
    fraction_too = fraction_only or any(w in desc for w in _FRACTION_WORDS)
    out: list[int | float] = []
    for n in numbers:
        values = [n.value]
        if n.percent and fraction_only:
            values = [n.value / 100]
        elif n.percent and fraction_too:
            values.append(n.value / 100)
        for v in values:
            if integer and not float(v).is_integer():
                continue
            if _in_bounds(schema, v):
                out.append(int(v) if float(v).is_integer() else round(v, 12))
    default = schema.get("default")
    if isinstance(default, int | float) and not isinstance(default, bool) and out:
        out.append(default)
    return list(dict.fromkeys(out))[:MAX_CANDIDATES]


def _in_bounds(schema: dict[str, Any], v: float) -> bool:
    def bound(key: str) -> float | None:
        b = schema.get(key)
        return float(b) if isinstance(b, int | float) and not isinstance(b, bool) else None

    lo, hi = bound("minimum"), bound("maximum")
    xlo, xhi = bound("exclusiveMinimum"), bound("exclusiveMaximum")
    return (
        math.isfinite(v)
        and (lo is None or v >= lo)
        and (hi is None or v <= hi)
        and (xlo is None or v > xlo)
        and (xhi is None or v < xhi)
    )


def _string_options(schema: dict[str, Any], text: str) -> list[str]:
    """Spans of the conversation matching the parameter's `pattern` or `format`."""
    source = schema.get("pattern")
    if not isinstance(source, str):
        source = _FORMATS.get(str(schema.get("format", "")))
    if not source:
        return []
    body = source.removeprefix("^").removesuffix("$")
    try:
        finder = re.compile(rf"(?<![\w-])(?:{body})(?![\w-])")
        full = re.compile(source)
    except re.error:
        return []
    lo, hi = int(schema.get("minLength", 0)), int(schema.get("maxLength", 10**6))
    spans = [m.group(0) for m in finder.finditer(text)]
    ok = [s for s in spans if full.search(s) and lo <= len(s) <= hi]
    return list(dict.fromkeys(ok))[:MAX_CANDIDATES]


def ground_schema(schema: Any, found: Candidates, *, copy_strings: bool = False) -> Any:
    """A copy of `schema` where each numeric node, and each string node with a `pattern` or a
    known `format`, becomes an `enum` of the conversation's matching values, when there are
    any. With `copy_strings`, other string nodes become `x-spans`: a run of the user's words
    or a string a tool returned. Used only to build the decoding grammar; the gate still
    validates the original."""
    if isinstance(schema, list):
        return [ground_schema(s, found, copy_strings=copy_strings) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "enum" in schema:
        named = mentioned(schema["enum"], found.user_text)
        return {**schema, "enum": named} if named else schema
    if "const" in schema or "$ref" in schema:
        return schema
    out = {k: _ground_child(k, v, found, copy_strings) for k, v in schema.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        required = set(schema.get("required") or [])
        out["properties"] = {
            k: v
            for k, v in props.items()
            if k in required or not _invented_only(schema["properties"][k], found)
        }
    typ = schema.get("type")
    options: list[Any] = []
    if typ in ("integer", "number"):
        options = _numeric_options(schema, found.numbers)
    elif typ == "string":
        options = _string_options(schema, found.text)
        spans = found.spans() if copy_strings else None
        if not options and spans and "pattern" not in schema and "format" not in schema:
            return out | {"x-spans": spans}
    if options:
        return {k: v for k, v in out.items() if k != "type"} | {"enum": options}
    return out


def unused_numbers(
    arguments: dict[str, Any], grounded: dict[str, Any], user_numbers: Sequence[float]
) -> list[str]:
    """Optional parameters, absent from `arguments`, that could take a number the user wrote
    and the call does not use yet (read from `grounded`, the schema `ground_schema` made).
    A 135M model often leaves out the very constraint the user gave ("under 400000")."""
    used = {float(v) for v in arguments.values() if _is_plain_number(v)}
    wanted = {float(n) for n in user_numbers} - used
    props = grounded.get("properties") or {}
    required = set(grounded.get("required") or [])
    out = []
    for name, node in props.items():
        if name in arguments or name in required or not isinstance(node, dict):
            continue
        branches = node.get("anyOf") or [node]
        enums = [x for b in branches if isinstance(b, dict) for x in b.get("enum", [])]
        if any(_is_plain_number(x) and float(x) in wanted for x in enums):
            out.append(name)
    return out


def _is_plain_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def mentioned(members: Sequence[Any], text: str) -> list[Any]:
    """The string members of an enum the user named (as a word, any case, or its plural):
    "find apartments" names "apartment". Only those are offered; when none is named, all are."""
    low = text.lower()
    out = []
    for m in members:
        if isinstance(m, str) and m.strip():
            word = re.escape(m.strip().lower())
            if re.search(rf"(?<![\w-]){word}(?:s|es)?(?![\w-])", low):
                out.append(m)
    return out


def _invented_only(node: Any, found: Candidates) -> bool:
    """Whether every value this (optional) parameter could take would be made up: a number
    when the conversation holds none that fits, a date or id when none is written. Such an
    optional parameter is left out of the grammar, so its default applies instead of a value
    copied from the schema's own bounds or examples."""
    if not isinstance(node, dict):
        return False
    alts = node.get("anyOf") or node.get("oneOf")
    if isinstance(alts, list):
        base = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
        real = [a for a in alts if a != {"type": "null"}]
        if not real or not all(isinstance(a, dict) for a in real):
            return False
        return all(_invented_only({**base, **a}, found) for a in real)
    if "enum" in node:
        strings = [m for m in node["enum"] if isinstance(m, str)]
        return len(strings) == len(node["enum"]) and not mentioned(strings, found.user_text)
    if "const" in node:
        return False
    typ = node.get("type")
    if typ in ("integer", "number"):
        return not _numeric_options(node, found.numbers)
    if typ == "string" and (isinstance(node.get("pattern"), str) or node.get("format") in _FORMATS):
        return not _string_options(node, found.text)
    return False


def fillable(schema: Any, found: Candidates) -> bool:
    """False when a required parameter must have a shape (`pattern`, or a `format` such as a
    date) and the conversation holds no value of that shape: the call could only be made
    with an invented value. A tool that needs a date nobody mentioned is not the tool for
    this request (a 135M model otherwise reaches for it and makes the date up)."""
    if not isinstance(schema, dict):
        return True
    props = schema.get("properties")
    if not isinstance(props, dict):
        return True
    for name in schema.get("required") or []:
        node = props.get(name)
        if not isinstance(node, dict) or node.get("type") != "string":
            continue
        shaped = isinstance(node.get("pattern"), str) or node.get("format") in _FORMATS
        if shaped and "enum" not in node and not _string_options(node, found.text):
            return False
    return True


def keyed_by(schema: Any, text: str) -> bool:
    """Whether `text` holds a value of the exact shape one of the tool's required parameters
    demands (an id matching its `pattern`, a date for its `format`). "Tell me about P-105"
    names a property id: the tools keyed by such an id are the ones meant, not a search whose
    free-text city would have to be invented."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return False
    for name in schema.get("required") or []:
        node = schema["properties"].get(name)
        if isinstance(node, dict) and node.get("type") == "string" and "enum" not in node:
            shaped = isinstance(node.get("pattern"), str) or node.get("format") in _FORMATS
            if shaped and _string_options(node, text):
                return True
    return False


def _ground_child(key: str, value: Any, found: Candidates, copy_strings: bool) -> Any:
    if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(
        value, dict
    ):
        return {k: ground_schema(v, found, copy_strings=copy_strings) for k, v in value.items()}
    if key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
        return ground_schema(value, found, copy_strings=copy_strings)
    return value


# --- the answer -------------------------------------------------------------------------------

#: Words any answer may use besides the user's own words and the tools' values: enough to say
#: what was found, done or refused, and nothing to describe schemas or error messages with.
_FUNCTION_TEXT = """a an the this that these those it its they them there here I you your we
    is are was were be been will can could cannot not no none only all each every one two three
    and or but so because as if than then also
    of in at on to for with from by under over about before after between per
    has have had do does did found find open opened scheduled booked sent done
    denied refused limit rate try again later confirm confirmed sorry
    yes which what when where who how many much price costs cost"""
FUNCTION_WORDS = tuple(_FUNCTION_TEXT.split())


def answer_values(messages: Sequence[Message], limit: int = 40) -> list[str]:
    """Scalar values returned by successful tools since the user last spoke, as text."""
    values: list[str] = []
    for m in reversed(messages):
        if m.role == "user":
            break
        r = m.tool_result
        if m.role != "tool" or r is None or r.error_kind is not None:
            continue
        try:
            data = json.loads(m.content)
        except ValueError:
            # plain text: its numbers, and the whole text when it is short
            nums = [_number_text(n.value) for n in conversation_numbers(m.content)]
            data = [m.content.strip().rstrip("."), *nums] if len(m.content) <= 60 else nums
        # one- and two-character values ("2", "no") would let almost any sentence through
        values += [v for v in _scalars(data) if 3 <= len(v) <= 60 and "\n" not in v]
    return list(dict.fromkeys(values))[:limit]


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def _scalars(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scalars(v)]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, float) and value.is_integer():
        return [str(int(value))]
    return [str(value).strip()]


#: What an answer must say when every tool returned nothing: that nothing was found.
NOTHING_WORDS = ("no", "No", "none", "None", "nothing", "Nothing", "not")


def only_empty_results(messages: Sequence[Message]) -> bool:
    """Whether tools answered since the user spoke, all successfully, all with nothing ([],
    {}, null or an empty text)."""
    seen = False
    for m in reversed(messages):
        if m.role == "user":
            break
        r = m.tool_result
        if m.role != "tool" or r is None:
            continue
        if r.error_kind is not None or m.content.strip() not in ("[]", "{}", "null", '""', ""):
            return False
        seen = True
    return seen


def answer_words(messages: Sequence[Message]) -> list[str]:
    """The user's words since they last spoke (their question), for the answer grammar."""
    words: list[str] = []
    for m in reversed(messages):
        if m.role == "user":
            words = [core for chain in word_chains(m.content) for core, _ in chain]
            break
    return words


def answer_grammar(question_words: Sequence[str], values: Sequence[str]) -> str:
    """One sentence, ending in a full stop, made of the user's words, the tools' values and a
    few function words (`FUNCTION_WORDS`); with `values`, it must mention at least one of them.
    A 135M model asked to answer freely describes the tool schemas, repeats error text or
    counts on without end; out of this vocabulary it can only say what the tools returned."""
    vocab = [*FUNCTION_WORDS, *question_words]
    vocab += [w[:1].upper() + w[1:] for w in vocab]
    words = " | ".join(gbnf_literal(w) for w in dict.fromkeys([*vocab, *values]))
    rules = f'sep ::= " " | ", " | ": "\nword ::= {words}\n'
    if not values:
        return 'root ::= word ( sep word ){1,20} "."\n' + rules
    vals = " | ".join(gbnf_literal(v) for v in values)
    return f'root ::= ( word sep ){{0,8}} val ( sep word ){{0,12}} "."\nval ::= {vals}\n' + rules
