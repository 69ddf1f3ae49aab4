"""Tool schemas simplified for OpenAI-compatible servers whose own schema converters are limited.

A server that constrains decoding to a tool's schema (llama.cpp's `llama_cpp.server` and
`llama-server` do when a tool is forced) first turns the JSON Schema into a grammar. Its converter
understands only part of the regular-expression language of ``pattern``: ``\\d``, ``\\w``,
``\\s``, escaped punctuation, ``(?:``, lookarounds and unanchored patterns are rejected or
mistranslated, and `llama_cpp.server` 0.3 even crashes on ``^P-\\d{3}$`` (the grammar it builds
does not parse). `simplify_schema(schema, "llama.cpp", tool=...)` rewrites every ``pattern`` into
the subset those converters handle, keeping its meaning or narrowing it:

- ``\\d`` → ``[0-9]``, ``\\w`` → ``[A-Za-z0-9_]``, ``\\s`` → space, tab, newline, carriage return
  (each matches a subset of what the original matched, so whatever the grammar lets the model
  write still satisfies the original pattern);
- escaped and special characters become one-character classes written in hex (``\\.`` →
  ``[\\x2E]``), because the grammar format knows only a handful of escapes;
- ``(?:`` becomes ``(``; a lazy quantifier loses its ``?`` (neither changes which whole strings
  match); an unanchored pattern gets ``.*`` on the open side and both anchors.

What cannot be expressed that way (lookarounds, backreferences, word boundaries, ``\\D``/``\\W``/
``\\S``, shorthands inside a negated class, possessive quantifiers, anchors inside alternatives) is
dropped with a warning naming the tool and the parameter. Nothing is lost in safety: only the
schema sent to the server changes; the gate keeps validating every call against the original.
"""

from __future__ import annotations

import copy
import logging
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "SCHEMA_COMPATS",
    "SchemaChange",
    "SchemaCompat",
    "SimplifiedSchema",
    "UntranslatablePattern",
    "simplify_pattern",
    "simplify_schema",
]

log = logging.getLogger("callgate.dialects")

SchemaCompat = Literal["llama.cpp"]
SCHEMA_COMPATS: tuple[SchemaCompat, ...] = ("llama.cpp",)

# keywords whose values are data, never schemas: a "pattern" key inside them is left alone
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "example"})
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions"})
# characters written as themselves outside a class; everything else becomes a hex class
_PLAIN = frozenset(string.ascii_letters + string.digits + " -_@:/,#!%&=<>';~`")
_SHORTHANDS = {"d": "0-9", "w": "A-Za-z0-9_", "s": "\\x20\\x09\\x0A\\x0D"}
_CONTROLS = {"t": 9, "n": 10, "r": 13, "f": 12, "v": 11}
_HEX_LENGTHS = {"x": 2, "u": 4, "U": 8}
_QUANTIFIER = re.compile(r"\{\s*(\d+)?\s*(,\s*(\d+)?\s*)?\}")


class UntranslatablePattern(ValueError):
    """A pattern construct the simplified dialect cannot express; the message says which."""


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One ``pattern`` rewritten (`replacement`) or dropped (`replacement` None, `reason` why)."""

    tool: str
    parameter: str
    pattern: str
    replacement: str | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SimplifiedSchema:
    """The schema to send to the server, and every change made to get it."""

    schema: dict[str, Any]
    changes: tuple[SchemaChange, ...]


def simplify_schema(
    schema: Mapping[str, Any], compat: SchemaCompat, *, tool: str
) -> SimplifiedSchema:
    """A copy of `schema` whose patterns the `compat` server's converter accepts.

    Dropped patterns are logged as warnings (tool and parameter named); rewrites at debug level.
    `schema` itself is never modified.
    """
    if compat not in SCHEMA_COMPATS:
        raise ValueError(f"schema_compat must be one of {SCHEMA_COMPATS}, not {compat!r}")
    changes: list[SchemaChange] = []
    simplified = _walk(dict(schema), "", tool, changes)
    for change in changes:
        if change.replacement is None:
            log.warning(
                "tool %r parameter %r: pattern %r dropped from the schema sent to the server "
                "(%s); the gate still validates it",
                change.tool,
                change.parameter,
                change.pattern,
                change.reason,
            )
        else:
            log.debug("tool %r parameter %r: pattern %r sent as %r", *_fields(change))
    return SimplifiedSchema(simplified, tuple(changes))


def _fields(change: SchemaChange) -> tuple[str, str, str, str | None]:
    return change.tool, change.parameter, change.pattern, change.replacement


def _walk(node: Any, path: str, tool: str, changes: list[SchemaChange]) -> Any:
    """Copy `node`, simplifying each string ``pattern`` of a (sub)schema; `path` names the
    parameter for messages (``address.zip``, ``tags[]``)."""
    if isinstance(node, list):
        return [_walk(item, path, tool, changes) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DATA_KEYWORDS:
            out[key] = copy.deepcopy(value)
        elif key == "pattern" and isinstance(value, str):
            where = path or "(the whole value)"
            try:
                replacement = simplify_pattern(value)
            except UntranslatablePattern as exc:
                changes.append(SchemaChange(tool, where, value, None, str(exc)))
                continue
            if replacement != value:
                changes.append(SchemaChange(tool, where, value, replacement))
            out[key] = replacement
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            prefix = f"{path}." if path and key == "properties" else ""
            if key != "properties":
                prefix = f"#/{key}/"
            out[key] = {
                name: _walk(sub, f"{prefix}{name}", tool, changes) for name, sub in value.items()
            }
        elif key in ("items", "additionalItems", "prefixItems"):
            out[key] = _walk(value, f"{path}[]", tool, changes)
        else:
            out[key] = _walk(value, path, tool, changes)
    return out


# --- patterns ----------------------------------------------------------------------------------


def simplify_pattern(pattern: str) -> str:
    """`pattern` in the regex subset llama.cpp's grammar converters handle, matching the same
    strings or fewer; raises `UntranslatablePattern` when it cannot be."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise UntranslatablePattern(f"not a valid regular expression: {exc}") from None
    body, start, end = _strip_anchors(pattern)
    alternation = _has_top_level_bar(body)
    if alternation and (start or end):
        raise UntranslatablePattern("alternatives with anchors of their own")
    translated = _translate(body)
    if alternation:
        translated = f"({translated})"
    result = "^" + ("" if start else ".*") + translated + ("" if end else ".*") + "$"
    try:
        re.compile(result)
    except re.error as exc:  # pragma: no cover - the translation only emits valid syntax
        raise UntranslatablePattern(f"could not be rewritten: {exc}") from None
    return result


def _strip_anchors(pattern: str) -> tuple[str, bool, bool]:
    start = pattern.startswith("^")
    body = pattern[1:] if start else pattern
    end = False
    if body.endswith("$"):
        backslashes = len(body[:-1]) - len(body[:-1].rstrip("\\"))
        end = backslashes % 2 == 0
    return (body[:-1] if end else body), start, end


def _has_top_level_bar(body: str) -> bool:
    depth, i, in_class = 0, 0, False
    while i < len(body):
        c = body[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return True
        i += 1
    return False


def _translate(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            piece, i = _escape(body, i)
        elif c == "[":
            piece, i = _char_class(body, i)
        elif c == "(":
            if body.startswith("(?:", i):
                piece, i = "(", i + 3
            elif body.startswith("(?", i):
                raise UntranslatablePattern("a lookaround, flag or named group")
            else:
                piece, i = "(", i + 1
        elif c in "*+?":
            piece, i = c, _after_quantifier(body, i + 1)
        elif c == "{" and (match := _QUANTIFIER.match(body, i)):
            piece, i = re.sub(r"\s", "", match.group(0)), _after_quantifier(body, match.end())
        elif c in "^$":
            raise UntranslatablePattern("an anchor inside the pattern")
        elif c in ").|":
            piece, i = c, i + 1
        else:
            piece, i = _literal(ord(c)), i + 1
        out.append(piece)
    return "".join(out)


def _after_quantifier(body: str, i: int) -> int:
    """Skip a lazy marker (it changes which match is found, not whether a string matches)."""
    if body.startswith("?", i):
        return i + 1
    if body.startswith("+", i):
        raise UntranslatablePattern("a possessive quantifier")
    return i


def _literal(code: int) -> str:
    """One literal character outside a class: itself if plainly safe, else a hex class."""
    ch = chr(code)
    if ch in _PLAIN or (code > 0x7F and ch.isprintable() and not ch.isspace()):
        return ch
    return f"[{_member(code)}]"


def _member(code: int) -> str:
    """One character inside a class: ASCII letters and digits as themselves, others in hex
    (the grammar format only knows \\x, \\u, \\U, \\t, \\n, \\r and a few quoted escapes)."""
    ch = chr(code)
    if ch.isascii() and ch.isalnum():
        return ch
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def _escape_code(body: str, i: int) -> tuple[int | str, int]:
    """The escape at `body[i]` (a backslash): a code point, or a shorthand letter (d, w, s)."""
    if i + 1 >= len(body):
        raise UntranslatablePattern("a trailing backslash")
    e = body[i + 1]
    if e in _SHORTHANDS:
        return e, i + 2
    if e in _CONTROLS:
        return _CONTROLS[e], i + 2
    if e in _HEX_LENGTHS:
        digits = body[i + 2 : i + 2 + _HEX_LENGTHS[e]]
        if len(digits) != _HEX_LENGTHS[e] or any(d not in string.hexdigits for d in digits):
            raise UntranslatablePattern(f"a malformed \\{e} escape")
        return int(digits, 16), i + 2 + len(digits)
    if e.isascii() and e.isalnum():
        raise UntranslatablePattern(f"the escape \\{e}")
    return ord(e), i + 2


def _escape(body: str, i: int) -> tuple[str, int]:
    code, i = _escape_code(body, i)
    if isinstance(code, str):
        return f"[{_SHORTHANDS[code]}]", i
    return _literal(code), i


def _char_class(body: str, i: int) -> tuple[str, int]:
    """A ``[...]`` class rewritten member by member (ranges kept, escapes in hex)."""
    i += 1
    negate = body.startswith("^", i)
    if negate:
        i += 1
    if body.startswith("]", i):
        raise UntranslatablePattern("a class starting with ']'")
    members: list[str] = []
    while i < len(body) and body[i] != "]":
        low, i = _class_atom(body, i, negate)
        if isinstance(low, str):
            members.append(low)
            continue
        if body.startswith("-", i) and i + 1 < len(body) and body[i + 1] != "]":
            high, i = _class_atom(body, i + 1, negate)
            if isinstance(high, str):
                raise UntranslatablePattern("a range ending in a shorthand class")
            members.append(f"{_member(low)}-{_member(high)}")
        else:
            members.append(_member(low))
    if i >= len(body):
        raise UntranslatablePattern("an unclosed class")
    return "[" + ("^" if negate else "") + "".join(members) + "]", i + 1


def _class_atom(body: str, i: int, negate: bool) -> tuple[int | str, int]:
    """One class member: a code point, or the expanded members of a shorthand (as str)."""
    c = body[i]
    if c == "[":
        raise UntranslatablePattern("a nested class or set operation")
    if c != "\\":
        return ord(c), i + 1
    code, i = _escape_code(body, i)
    if isinstance(code, str):
        if negate:
            raise UntranslatablePattern(f"\\{code} inside a negated class")
        return _SHORTHANDS[code], i
    return code, i
