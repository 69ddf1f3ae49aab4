"""Masking secrets and personal data before anything is written down or shown.

Audit records, approval prompts and error messages all need the arguments of a call, and none of
them may keep a password or a card number. `redact` returns a masked *copy* (same shape: dicts stay
dicts, lists stay lists, only leaf values change) using three layers:

1. the tool's own sensitive parameters (`ToolAnnotations.sensitive`), given as names or dotted
   paths (`"payment.card"`; lists along the way are crossed transparently);
2. key names that are sensitive anywhere in the structure (password, secret, api_key, token,
   authorization, ssn, card_number, cvv, ...), matched on the words of the key, case-insensitive,
   so `userPassword`, `X-Api-Key` and `client_secret` match but `max_tokens` does not;
3. value patterns inside any string: card numbers that pass the Luhn check, bearer tokens,
   `sk-...` style API keys, AWS access key ids, JWTs, `password=...` fragments and credentials in
   URLs.

It is pure (no I/O, no global state) and cheap: patterns are compiled once and short strings skip
the scan. It is linear whatever the input: every repetition is bounded or possessive, and no
pattern is tried again from inside a run it already read (a match may only start where a run
starts, or right after `://`). The input is capped: one string is read up to `MAX_TEXT_CHARS`
and one `redact` call up to `MAX_TOTAL_CHARS` of strings in all; what lies beyond is replaced by
a note saying how much was left out (never kept unmasked).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MASK = "***"
#: The most characters of one string that are read (and kept); the rest is dropped.
MAX_TEXT_CHARS = 65_536
#: The most characters of strings one `redact` call reads across a whole structure.
MAX_TOTAL_CHARS = 262_144
_CUT_BACKOFF = 512  # a cut backs off to whitespace so no secret is kept half-masked

# Words that make a key sensitive wherever they appear in it.
_ANY_WORD = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "secrets",
        "credential",
        "credentials",
        "ssn",
        "cvv",
        "cvv2",
        "cvc",
        "authorization",
        "apikey",
        "cookie",
        "otp",
    }
)
# Whole keys (words joined) that are sensitive.
_JOINED = frozenset(
    {
        "apikey",
        "xapikey",
        "cardnumber",
        "creditcard",
        "creditcardnumber",
        "ccnumber",
        "pan",
        "pin",
        "privatekey",
        "secretkey",
        "accesskey",
        "signingkey",
        "encryptionkey",
        "setcookie",
        "sessionid",
        "socialsecuritynumber",
    }
)
# Keys whose last word is one of these are sensitive ("auth_token", "refreshToken").
_LAST_WORD = frozenset({"token"})
# Suffixes of the joined key that are sensitive ("stripe_api_key", "aws_secret_access_key").
_JOINED_SUFFIXES = ("apikey", "privatekey", "secretkey", "accesskey", "cardnumber", "signingkey")

_MAX_KEY_CHARS = 256
_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """`is_sensitive_key`, plus any key with the word "card": what a person or a model is
    shown (approval requests, error messages) masks card fields of every kind."""
    return is_sensitive_key(key) or "card" in (w.lower() for w in _WORD_RE.findall(key))


@lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """Whether a mapping key names a secret (by its words, case-insensitive). A key longer
    than `_MAX_KEY_CHARS` is no parameter name: its value is masked without reading it."""
    if len(key) > _MAX_KEY_CHARS:
        return True
    words = [w.lower() for w in _WORD_RE.findall(key)]
    if not words:
        return False
    joined = "".join(words)
    if joined in _JOINED or joined.endswith(_JOINED_SUFFIXES):
        return True
    if words[-1] in _LAST_WORD:
        return True
    return any(w in _ANY_WORD for w in words)


# ----------------------------------------------------------------------------- value patterns


@dataclass(frozen=True, slots=True)
class ValuePattern:
    """A secret recognised inside free text: `regex` finds it, `replace` masks one match.

    `hints` (lower-case substrings) and `min_digits` are cheap pre-checks: when the text has
    none of the hints, or fewer digits, the regex is not run at all.
    """

    name: str
    regex: re.Pattern[str]
    replace: Callable[[re.Match[str]], str]
    hints: tuple[str, ...] = ()
    min_digits: int = 0


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # a digit doubled, its digits summed


def _luhn_ok(digits: str) -> bool:
    odd = sum(map(int, digits[-1::-2]))
    even = sum(_DOUBLED[int(c)] for c in digits[-2::-2])
    return (odd + even) % 10 == 0


def _mask_card(m: re.Match[str]) -> str:
    text = m.group(0)
    digits = text.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits):
        return "****" + digits[-4:]
    return text


def _keep_group1(m: re.Match[str]) -> str:
    return m.group(1) + MASK


def _mask_all(m: re.Match[str]) -> str:
    return MASK


DEFAULT_PATTERNS: tuple[ValuePattern, ...] = (
    ValuePattern(
        "card_number",
        re.compile(r"(?<![0-9-])[0-9](?:[ -]?[0-9]){12,18}(?![0-9-])"),
        _mask_card,
        min_digits=13,
    ),
    ValuePattern(
        "bearer",
        re.compile(
            r"(?i)\b(bearer\s{1,8})(?=[A-Za-z\-._~+/]{0,512}\d)[A-Za-z0-9\-._~+/]{8,}+={0,3}"
        ),
        _keep_group1,
        hints=("bearer",),
    ),
    ValuePattern(
        "authorization",
        re.compile(
            r"(?i)\b(authorization[\"']?\s{0,8}[:=]\s{0,8}[\"']?(?:(?:basic|digest|bearer)\s{1,8})?)"
            r"(?!\*\*\*|(?:basic|digest|bearer)\b)[^\s\"',;}]++"
        ),
        _keep_group1,
        hints=("authorization",),
    ),
    ValuePattern(
        "api_key",
        re.compile(r"\b(sk-|sk_live_|sk_test_|rk_live_|pk_live_)[A-Za-z0-9_\-]{12,}+"),
        _keep_group1,
        hints=("sk-", "sk_", "rk_", "pk_"),
    ),
    ValuePattern(
        "github_token",
        re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{20,}+|\b(github_pat_)[A-Za-z0-9_]{20,}+"),
        lambda m: (m.group(1) or m.group(2)) + MASK,
        hints=("gh", "github_pat_"),
    ),
    ValuePattern(
        "slack_token",
        re.compile(r"\b(xox[abposr]-)[A-Za-z0-9\-]{10,}+"),
        _keep_group1,
        hints=("xox",),
    ),
    ValuePattern(
        "aws_access_key",
        re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        _mask_all,
        hints=("akia", "asia"),
    ),
    ValuePattern(
        "gcp_api_key",
        re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"),
        _mask_all,
        hints=("aiza",),
    ),
    ValuePattern(
        "gcp_oauth_token",
        re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}+"),
        _mask_all,
        hints=("ya29.",),
    ),
    ValuePattern(
        "jwt",
        re.compile(
            r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{5,}+\.[A-Za-z0-9_\-]{5,}+\."
            r"[A-Za-z0-9_\-]{5,}+"
        ),
        _mask_all,
        hints=("eyj",),
    ),
    ValuePattern(
        "key_value",
        re.compile(
            r"(?i)\b((?:password|passwd|pwd|passphrase|secret|client_secret|api[_-]?key|"
            r"access[_-]?token|refresh[_-]?token|auth[_-]?token|token|ssn|cvv)"
            r"[\"']?\s{0,8}[:=]\s{0,8}[\"']?)(?!\*\*\*)[^\s\"'&,;}]++"
        ),
        _keep_group1,
        hints=("pass", "pwd", "secret", "key", "token", "ssn", "cvv"),
    ),
    ValuePattern(
        "url_credentials",
        re.compile(r"(?<=://)([^/\s:@]++:)[^/\s@]++(?=@)"),
        _keep_group1,
        hints=("://",),
    ),
    ValuePattern("ssn", re.compile(r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b"), _mask_all, min_digits=9),
)

_MIN_SCAN = 8  # no default pattern matches fewer characters


def _count_digits(text: str) -> int:
    """ASCII digits in `text` (the digits the card and SSN patterns read), counted in C."""
    return sum(map(text.count, "0123456789"))


def redact_text(text: str, patterns: Iterable[ValuePattern] = DEFAULT_PATTERNS) -> str:
    """Mask every secret the patterns recognise inside `text` (read up to `MAX_TEXT_CHARS`)."""
    if len(text) < _MIN_SCAN:
        return text
    text = _cap(text, MAX_TEXT_CHARS)
    lower: str | None = None
    digits = -1
    for p in patterns:
        if p.hints:
            if lower is None:
                lower = text.lower()
            if not any(h in lower for h in p.hints):
                continue
        if p.min_digits:
            if digits < 0:
                digits = _count_digits(text)
            if digits < p.min_digits:
                continue
        text = p.regex.sub(p.replace, text)
        lower = None  # the text changed
    return text


def _cap(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, backed off to the last whitespace before the cut (a
    secret cut in half could escape its pattern), with a note of what was left out."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = max(head.rfind(c, max(0, limit - _CUT_BACKOFF)) for c in " \n\t")
    head = head[: space + 1] if space >= 0 else head[: max(0, limit - _CUT_BACKOFF)]
    return f"{head}[... {len(text) - len(head)} more characters not recorded]"


# ------------------------------------------------------------------------------------ structures

Path = tuple[str, ...]


@lru_cache(maxsize=1024)
def _parse_paths(sensitive: frozenset[str]) -> frozenset[Path]:
    return frozenset(tuple(part for part in s.split(".") if part) for s in sensitive if s)


def redact(
    args: Any,
    sensitive: Iterable[str] = (),
    *,
    patterns: Iterable[ValuePattern] = DEFAULT_PATTERNS,
    keys: Callable[[str], bool] = is_sensitive_key,
) -> Any:
    """A masked copy of `args` (any JSON-like structure, or raw JSON text).

    `sensitive`: parameter names or dotted paths to mask whatever their value. `keys`: decides
    which mapping keys are secret anywhere in the structure (default: `is_sensitive_key`).
    `patterns`: secrets to find inside strings (pass `()` to disable).
    """
    walk = _Walk(_parse_paths(frozenset(sensitive)), tuple(patterns), keys)
    if isinstance(args, str):
        return walk.raw(args)
    return walk(args, ())


@dataclass(slots=True)
class _Walk:
    """One `redact` call: what to mask, and how many characters of strings may still be read
    (`MAX_TOTAL_CHARS` in all, so no structure makes redaction slow)."""

    paths: frozenset[Path]
    pats: tuple[ValuePattern, ...]
    keys: Callable[[str], bool]
    budget: int = MAX_TOTAL_CHARS

    def text(self, value: str) -> str:
        if self.budget <= 0:
            return f"[{len(value)} characters not recorded: over the redaction limit]"
        value = _cap(value, min(self.budget, MAX_TEXT_CHARS))
        self.budget -= len(value)
        return redact_text(value, self.pats)

    def key(self, k: Any, out: Mapping[Any, Any]) -> Any:
        """A mapping key as recorded: a model can put a secret in a key as easily as in a
        value, so keys are scanned too; masked keys stay distinct so no value is lost."""
        if not isinstance(k, str) or len(k) < _MIN_SCAN:
            return k
        masked = self.text(k)
        if masked != k and masked in out:
            masked = f"{masked}#{len(out)}"
        return masked

    def raw(self, text: str) -> str:
        """Raw argument text (a call whose JSON did not decode, or a provider's string
        arguments): masked as a structure when it is JSON, else as text."""
        if text.lstrip()[:1] in ("{", "[") and len(text) <= MAX_TEXT_CHARS:
            try:
                decoded = json.loads(text)
            except ValueError:
                pass
            else:
                return json.dumps(self(decoded, ()), ensure_ascii=False)
        return self.text(text)

    def __call__(self, value: Any, path: Path) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if value is None or value.__class__ in _PLAIN:  # before the slow abstract-class check
            return value
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                sub = (*path, str(k))
                key = self.key(k, out)
                if sub in self.paths or (isinstance(k, str) and self.keys(k)):
                    out[key] = _mask_value(v)
                else:
                    out[key] = self(v, sub)
            return out
        if isinstance(value, (list, set, frozenset)):
            return [self(v, path) for v in value]
        if isinstance(value, tuple):
            return tuple(self(v, path) for v in value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        dump = getattr(value, "model_dump", None)
        if callable(dump):  # a Pydantic model among validated arguments
            return self(dump(mode="json"), path)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self(dataclasses.asdict(value), path)
        if isinstance(value, (bytes, bytearray)):
            return f"<{len(value)} bytes>"
        return self.text(str(value))


_PLAIN = frozenset({bool, int, float})


def _mask_value(value: Any) -> Any:
    """The mask for a sensitive value: None and empty values stay visible (nothing to hide)."""
    if value is None or value == "" or value == [] or value == {}:
        return value
    return MASK
