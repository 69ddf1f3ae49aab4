"""Values and text: normalising a value, and finding it as a *whole value* in a body of text.

Matching is on normalised values and whole tokens, never substrings:

- emails: case-insensitive, ``mailto:`` dropped;
- URLs: scheme, ``www.``, default ports, fragments and trailing slashes ignored, host folded;
- phone and account numbers (4+ digits): separators ignored, letters case-folded, so
  "+1 (555) 123-4567" and "5551234567" match; a 1-3 digit country code is tolerated on 7+ digits;
- anything else: the value's tokens must appear as a contiguous run of whole tokens.

A short number is the easiest thing to borrow by accident: "June 13", "12:00" and "1-hour" all
contain digits that an attacker's id could be. So a number inside a date, a time or a quantity
never counts, and a number shorter than `min_digits` counts only where it is written as an id
("file 13", "#13", "id 13").
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Literal
from urllib.parse import urlsplit

TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# Addresses are found word by word (`_words`), each word matched whole and capped in length:
# the same patterns searched over a whole attacker-written page backtrack quadratically
# ("a.a.a.a..." took 15 s for 20,000 characters); one fullmatch per short word cannot.
EMAIL = re.compile(r"[A-Za-z0-9._%+'\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
URL = re.compile(
    r"(?:https?://|www\.)[^\s\"'<>()\[\]{}]+|"
    r"[a-z0-9][a-z0-9.\-]*\.(?:com|org|net|io|dev|app|co|info|biz|xyz|example)(?:/[^\s\"'<>]*)?",
    re.IGNORECASE,
)
#: a phone or account number inside prose: 7+ digits with the usual separators
PHONE = re.compile(r"\+?\d[\d\s().\-/]{5,}\d")
_SPLIT = re.compile(r"[\s\"'<>()\[\]{},;|]+")
_GLUE = re.compile(r"[:=]")
_MAX_WORD = 2048
_MAX_CODE = 64
#: a value longer than this many tokens is never looked for in a text (and cannot be traced)
MAX_VALUE_TOKENS = 64
#: candidate phone numbers: bounded runs of digits and separators, not inside a word
_NUMBER_RUN = re.compile(r"(?<![\w/])[+\d][\d\s().\-/]{6,40}(?![\w/])")
_CODE_CHARS = re.compile(r"^[A-Za-z0-9\s\-().+/#]+$")
_CODE_SEP = re.compile(r"^[\s\-().+/#]{0,3}$")

Kind = Literal["email", "url", "code", "words"]


def wordset(text: str) -> frozenset[str]:
    """A set of words written as one string (long word lists stay readable)."""
    return frozenset(text.split())


_MONTHS = wordset(
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april "
    "june july august september october november december"
)
_DAYS = wordset(
    "mon tue wed thu fri sat sun monday tuesday wednesday thursday friday saturday sunday"
)
_UNITS = wordset(
    "am pm h hr hrs hour hours min mins minute minutes sec secs second seconds day days "
    "week weeks month months year years yr yrs percent pct people persons person times "
    "pages page items item km kg mb gb usd eur gbp dollars euros pounds st nd rd th x"
)
#: words that, written just before a number, make it an id ("ticket 13", "#13", "no. 13")
ID_MARKERS = wordset("id ids no nr num number ref reference")

#: words too common to be taken as a value the user gave, unless written as an id
COMMON_WORDS = wordset(
    "the and for you your our are was his her him she they them this that with from have "
    "has had not all any can will just out off one two new old now here there who what "
    "when please thanks send email mail post share delete pay today tomorrow"
)

#: default minimum length of a numeric value found in the user's text outside an id marker
DEFAULT_MIN_DIGITS = 5


# ------------------------------------------------------------------------------- normalising


def norm_email(v: str) -> str:
    v = v.strip().casefold()
    return v[7:] if v.startswith("mailto:") else v


def norm_url(v: str) -> str:
    v = v.strip().rstrip(".,;:!?")
    if not re.match(r"^[a-z][a-z0-9+.\-]*://", v, re.IGNORECASE):
        v = "http://" + v
    try:
        p = urlsplit(v)
        host = (p.hostname or "").casefold().rstrip(".")
        port = p.port
    except ValueError:
        return v.casefold()
    if host.startswith("www."):
        host = host[4:]
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    path = p.path.rstrip("/")
    query = f"?{p.query}" if p.query else ""
    return f"{host}{path}{query}"


def classify(value: str) -> tuple[Kind, str]:
    """The kind of a value and its normalised form."""
    v = value.strip()
    low = v.casefold()
    if len(v) > _MAX_WORD:  # no address is this long; keep the patterns off huge values
        return "words", " ".join(t.casefold() for t in TOKEN.findall(v))
    if low.startswith("mailto:") or (EMAIL.fullmatch(v) is not None):
        return "email", norm_email(v)
    if re.match(r"^(?:https?://|www\.)", low) or (
        URL.fullmatch(v) is not None and " " not in v and not v.replace(".", "").isdigit()
    ):
        return "url", norm_url(v)
    if sum(ch.isdigit() for ch in v) >= 4 and len(v) <= _MAX_CODE and _CODE_CHARS.match(v):
        return "code", "".join(t.casefold() for t in TOKEN.findall(v))
    return "words", " ".join(t.casefold() for t in TOKEN.findall(v))


def same_value(a: str, b: str) -> bool:
    """Whether two written values are the same value (formats aside)."""
    ka, na = classify(a)
    kb, nb = classify(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    if ka == kb == "code" and na.isdigit() and nb.isdigit():
        short, long_ = sorted((na, nb), key=len)
        return len(short) >= 7 and long_.endswith(short) and is_country_prefix(long_[: -len(short)])
    return False


def is_country_prefix(prefix: str) -> bool:
    """A 1-3 digit country code, optionally written with the international "00"."""
    digits = prefix[2:] if prefix.startswith("00") else prefix
    return 1 <= len(digits) <= 3


def _words(text: str) -> Iterator[str]:
    """Whitespace- and bracket-separated words, end punctuation dropped, length capped."""
    for w in _SPLIT.split(text):
        w = w.strip(".:!?*`")
        if 3 <= len(w) <= _MAX_WORD:
            yield w


_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+'-")
_DOMAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


def _emails_in_word(word: str) -> list[str]:
    """Each address around an "@" of the word ("to=bob@x.com" -> bob@x.com), with bounded
    scans either side so a word of many "@" stays linear."""
    out = []
    at = word.find("@")
    while at != -1:
        left = at
        while left > 0 and at - left < 64 and word[left - 1] in _LOCAL:
            left -= 1
        right = at + 1
        while right < len(word) and right - at < 255 and word[right] in _DOMAIN:
            right += 1
        cand = word[left:right].strip(".-")
        if EMAIL.fullmatch(cand):
            out.append(cand)
        at = word.find("@", at + 1)
    return out


def emails_and_urls(text: str) -> tuple[list[str], list[str]]:
    """The email addresses and links in a text, in linear time."""
    emails: list[str] = []
    urls: list[str] = []
    for w in _words(text):
        low = w.casefold()
        starts = [
            i for i in (low.find("http://"), low.find("https://"), low.find("www.")) if i >= 0
        ]
        if starts:  # also glued to a label: "login:https://evil.example/x"
            cand = w[min(starts) :]
            if URL.fullmatch(cand):
                urls.append(cand)
        elif "@" not in w and "." in w:
            cand = _GLUE.split(w)[-1]  # "visit=evil.example/x"
            if URL.fullmatch(cand) and not cand.replace(".", "").isdigit():
                urls.append(cand)
        if "@" in w:
            emails += _emails_in_word(w)
    return emails, urls


def addresses_in(text: str) -> list[str]:
    """The links, email addresses and phone numbers inside free text (a message body)."""
    emails, urls = emails_and_urls(text)
    found = emails + urls
    for run in _NUMBER_RUN.findall(text):
        m = PHONE.search(run)
        if m is not None and sum(c.isdigit() for c in m.group(0)) >= 7:
            found.append(m.group(0).strip())
    return list(dict.fromkeys(found))  # each address once, in order


# ------------------------------------------------------------------------------- text index


class TextIndex:
    """Tokens, emails and URLs of a body of text, for whole-value lookups."""

    __slots__ = ("_positions", "emails", "seps", "tokens", "urls")

    def __init__(self, texts: Sequence[str]) -> None:
        self.tokens: list[str] = []
        self.seps: list[str] = []  # separator *before* each token
        self.emails: set[str] = set()
        self.urls: set[str] = set()
        for text in texts:
            if text:
                self._add(text)
        self._positions: dict[str, list[int]] = {}
        for i, t in enumerate(self.tokens):
            self._positions.setdefault(t, []).append(i)

    def _add(self, text: str) -> None:
        last = 0
        first = True
        for m in TOKEN.finditer(text):
            # a boundary between texts never joins tokens into one value
            self.seps.append("\x00" if first else text[last : m.start()])
            self.tokens.append(m.group(0).casefold())
            last = m.end()
            first = False
        if not first:
            self.seps.append("\x00")  # sentinel separator after the last token of this text
            self.tokens.append("\x00")
        emails, urls = emails_and_urls(text)
        self.emails.update(norm_email(e) for e in emails)
        self.urls.update(norm_url(u) for u in urls)

    def positions(self, token: str) -> list[int]:
        return self._positions.get(token, [])

    def runs(self, words: Sequence[str]) -> Iterator[tuple[int, int]]:
        """(start, end) token spans where `words` occur contiguously."""
        n = len(words)
        if not n or n > MAX_VALUE_TOKENS:
            return
        for i in self._positions.get(words[0], ()):
            if self.tokens[i : i + n] == list(words):
                yield i, i + n

    def find(
        self, value: str, *, min_digits: int = DEFAULT_MIN_DIGITS, kind_word: str = ""
    ) -> str | None:
        """Where the whole value occurs (a short description of the span), or None."""
        kind, norm = classify(value)
        if not norm:
            return None
        if norm.isdigit() and len(norm) < min_digits:
            return self._short_number(norm, kind_word)
        if kind == "email":
            return f"email {norm}" if norm in self.emails else None
        if kind == "url":
            return f"link {norm}" if norm in self.urls else None
        if kind == "code":
            return f"number {value.strip()}" if self._code(norm) else None
        words = norm.split()
        if len(words) == 1 and (len(words[0]) <= 2 or words[0] in COMMON_WORDS):
            return self._short_number(words[0], kind_word)  # "me", "it", "hr": only as an id
        for start, end in self.runs(words):
            if len(words) == 1 and words[0].isdigit() and self._in_quantity(start):
                continue
            return "words " + " ".join(self.tokens[start:end])
        return None

    def occurs(self, value: str) -> bool:
        """Whether the value occurs at all, in any context (was it copied from this text?)."""
        kind, norm = classify(value)
        if not norm:
            return False
        if kind == "email":
            return norm in self.emails
        if kind == "url":
            return norm in self.urls
        if kind == "code":
            return self._code(norm)
        return next(self.runs(norm.split()), None) is not None

    def _short_number(self, token: str, kind_word: str) -> str | None:
        """A short number (or a short, common word) counts only where written as an id —
        "file 13", "#13", "@hr", "channel it" — and a number never in a date or time."""
        for i in self._positions.get(token, ()):
            if token.isdigit() and self._in_quantity(i):
                continue
            sep = self.seps[i]
            prev = self.tokens[i - 1] if i > 0 and sep != "\x00" else ""
            markers = ID_MARKERS | ({kind_word, kind_word + "s"} if kind_word else set())
            if sep.endswith(("#", "@")) or (
                prev in markers and sep.strip() in ("", ":", ".", ":#", ".#")
            ):
                return f"id {prev} {token}".replace("  ", " ")
        return None

    def _in_quantity(self, i: int) -> bool:
        """Whether the number at token i is part of a date, a time, an amount or a quantity."""
        sep_before = self.seps[i]
        sep_after = self.seps[i + 1] if i + 1 < len(self.seps) else "\x00"
        prev = self.tokens[i - 1] if i > 0 and sep_before != "\x00" else ""
        nxt = self.tokens[i + 1] if sep_after != "\x00" and i + 1 < len(self.tokens) else ""
        if any(c in sep_before for c in "$€£") or "%" in sep_after:
            return True
        if prev in _MONTHS or prev in _DAYS or nxt in _MONTHS or nxt in _UNITS:
            return True
        joined = sep_before.strip() in (":", "/", "-", ".") and prev.isdigit()
        joins_next = sep_after.strip() in (":", "/", "-", ".") and nxt.isdigit()
        return joined or joins_next

    def _code(self, code: str) -> bool:
        targets = [code]
        if code.isdigit() and len(code) >= 7:
            targets += [
                code[k:] for k in range(1, 6) if len(code) - k >= 7 and is_country_prefix(code[:k])
            ]
        if any(self._code_at(target) for target in targets):
            return True
        # a longer number in the text may carry a country code the value lacks
        if code.isdigit() and len(code) >= 7:
            for t in self._codes_in_text():
                if t != code and t.endswith(code) and is_country_prefix(t[: len(t) - len(code)]):
                    return True
        return False

    def _code_at(self, target: str) -> bool:
        for i, tok in enumerate(self.tokens):
            if not tok or not target.startswith(tok) or self._is_tail(i):
                continue
            acc = tok
            j = i + 1
            while len(acc) < len(target) and j < len(self.tokens):
                if not _CODE_SEP.match(self.seps[j]):
                    break
                acc += self.tokens[j]
                if not target.startswith(acc):
                    break
                j += 1
            if acc == target and not self._continues(j):
                return True
        return False

    def _is_tail(self, i: int) -> bool:
        """Whether token i continues a number that started earlier."""
        return (
            i > 0
            and self.tokens[i].isdigit()
            and self.tokens[i - 1].isdigit()
            and bool(_CODE_SEP.match(self.seps[i]))
        )

    def _continues(self, j: int) -> bool:
        """Whether the number ending before token j goes on (so it was only a prefix)."""
        return (
            j < len(self.tokens)
            and bool(_CODE_SEP.match(self.seps[j]))
            and self.tokens[j].isdigit()
        )

    def _codes_in_text(self) -> Iterator[str]:
        """Numbers written with separators, joined; longer ones than any value are skipped."""
        acc: list[str] = []
        size = 0
        for tok, sep in zip(self.tokens, self.seps, strict=True):
            if acc and _CODE_SEP.match(sep) and tok.isdigit():
                acc.append(tok)
                size += len(tok)
                continue
            if acc and size <= _MAX_CODE:
                yield "".join(acc)
            acc, size = ([tok], len(tok)) if tok.isdigit() else ([], 0)
        if acc and size <= _MAX_CODE:
            yield "".join(acc)
