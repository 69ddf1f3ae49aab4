"""Decoding a model's raw arguments into a JSON object, with limits.

Runs before validation, on text nobody has checked: it must be cheap on the common case and
never raise anything but `ArgumentsInvalid`. Rules:

- the raw text is at most `max_bytes` (default 64 KiB) and nests at most `max_depth` (default 32);
- it must be a JSON object (an empty string counts as `{}`, which some providers send for
  parameterless tools);
- NaN / Infinity are refused (not JSON; they break downstream serialisers), and so are numbers
  beyond a double's range (1e999, a 400-digit integer), which turn into infinity;
- duplicate keys are refused (providers' parsers disagree on which value wins).

Decoding uses pydantic-core's Rust JSON parser. Duplicate keys are invisible after parsing, so a
parse is accepted outright only when the number of keys it produced equals the number of ':' in
the text (an upper bound on the keys written); otherwise the text is scanned precisely.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

from callgate.tools.schema import ArgumentsInvalid, FieldIssue


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_bytes: int = 65_536
    max_depth: int = 32
    max_items: int = 10_000


DEFAULT_LIMITS = DecodeLimits()


def _issue(message: str, given: Any = None, has_given: bool = False) -> ArgumentsInvalid:
    return ArgumentsInvalid([FieldIssue((), "format", message, given=given, has_given=has_given)])


def _count(obj: Any, depth: int, limits: DecodeLimits, acc: list[int]) -> None:
    """Count keys and items; enforce depth and size. `acc` = [keys, items]."""
    if depth > limits.max_depth:
        raise _issue(
            f"arguments are nested more than {limits.max_depth} levels deep; flatten the structure"
        )
    if isinstance(obj, dict):
        acc[0] += len(obj)
        acc[1] += len(obj)
        for v in obj.values():
            if isinstance(v, dict | list):
                _count(v, depth + 1, limits, acc)
    elif isinstance(obj, list):
        acc[1] += len(obj)
        for v in obj:
            if isinstance(v, dict | list):
                _count(v, depth + 1, limits, acc)
    if acc[1] > limits.max_items:
        raise _issue(f"arguments contain more than {limits.max_items} values; send less data")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:
            raise _DuplicateKey(k)
        seen[k] = v
    return seen


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


#: an integer this large becomes infinity wherever a float is expected (a nested model's float
#: field, any JSON consumer using doubles), so it is refused like Infinity itself
_FLOAT_LIMIT = 2**1024

_NONFINITE = re.compile(r"\b(NaN|-?Infinity)\b")
#: numbers that may overflow a float: a 3-digit exponent or 300+ digits
_HUGE_NUMBER = re.compile(r"[0-9][eE][+-]?[0-9]{3}|[0-9]{300}")


def decode_arguments(
    raw: str | dict[str, Any], limits: DecodeLimits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """Return the arguments as a dict or raise `ArgumentsInvalid` saying what is wrong."""
    if isinstance(raw, dict):
        acc = [0, 0]
        _count(raw, 1, limits, acc)
        _check_mapping(raw, limits)
        return raw
    if not isinstance(raw, str):
        raise _issue(f"arguments must be a JSON object, got {type(raw).__name__}")
    # a character is 1-4 bytes: only encode when the length alone cannot decide
    n = len(raw)
    if n > limits.max_bytes or (n * 4 > limits.max_bytes and _utf8_len(raw) > limits.max_bytes):
        raise _issue(_too_big(_utf8_len(raw), limits))
    text = raw.strip()
    if not text:
        return {}
    try:
        obj = _parse(text)
    except ValueError as e:
        if _NONFINITE.search(text):
            raise _issue(
                "arguments contain NaN or Infinity, which are not valid JSON; use a finite number"
                " or null"
            ) from None
        raise _issue(f"arguments are not valid JSON ({e}); send one JSON object") from None
    if not isinstance(obj, dict):
        raise _not_an_object(obj)
    _check_object(obj, text, limits)
    return obj


def _not_an_object(obj: Any) -> ArgumentsInvalid:
    kind = {
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }
    return _issue(
        "arguments must be a JSON object with named parameters, got " + kind.get(type(obj), "null"),
        given=obj,
        has_given=True,
    )


def _check_object(obj: dict[str, Any], text: str, limits: DecodeLimits) -> None:
    """Depth, size, overflowing numbers and duplicate keys of a decoded object."""
    keys = len(obj)
    for v in obj.values():
        if type(v) is dict or type(v) is list:
            acc = [0, 0]
            _count(obj, 1, limits, acc)
            keys = acc[0]
            break
    if _HUGE_NUMBER.search(text):
        # 1e999 parses to infinity without being spelled "Infinity"
        _check_mapping(obj, limits)
    if keys != text.count(":"):
        try:
            json.loads(text, object_pairs_hook=_no_duplicates)
        except _DuplicateKey as d:
            raise _issue(
                f"parameter {d.key!r} appears more than once; send each parameter once"
            ) from None
        except ValueError:  # pragma: no cover - from_json accepted it already
            pass


_NOT_UNICODE = (
    "arguments contain text that is not valid Unicode (a lone surrogate such as \\ud800); "
    "send plain text"
)


def _parse(text: str) -> Any:
    try:
        return from_json(text, allow_inf_nan=False)
    except (TypeError, UnicodeError):
        # lone surrogates in the text itself: refused like escaped ones, so a tool never
        # receives a string it cannot encode
        raise _issue(_NOT_UNICODE) from None
    except ValueError as e:
        if "hex escape" in str(e):
            raise _issue(_NOT_UNICODE) from None
        raise


def _utf8_len(text: str) -> int:
    # lone surrogates cannot be encoded strictly; they still count towards the size
    return len(text.encode("utf-8", "surrogatepass"))


def _too_big(size: int, limits: DecodeLimits) -> str:
    return (
        f"arguments are {size} bytes; the limit is {limits.max_bytes}. "
        "Send less data or split the work into several calls"
    )


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _issue(_NOT_UNICODE) from None


def _check_mapping(obj: dict[str, Any], limits: DecodeLimits) -> None:
    """Arguments a provider delivered already decoded (Anthropic, Gemini) get the same checks
    as text: string keys only, finite numbers, and the size limit (measured on the text of the
    strings, which dominates the size of any realistic payload)."""
    size = [0]

    def walk(v: Any) -> None:
        if isinstance(v, str):
            size[0] += len(v)
            if not v.isascii():
                _check_unicode(v)
        elif (isinstance(v, float) and (v != v or v in (float("inf"), float("-inf")))) or (
            v.__class__ is int and not -_FLOAT_LIMIT < v < _FLOAT_LIMIT
        ):
            raise _issue(
                "arguments contain NaN or Infinity (or a number too large for a float); use a "
                "finite number or null"
            )
        elif isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str):
                    raise _issue(f"parameter names must be strings, got {type(k).__name__}")
                size[0] += len(k)
                if not k.isascii():
                    _check_unicode(k)
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)
        if size[0] > limits.max_bytes:
            raise _issue(_too_big(size[0], limits))

    walk(obj)
