"""Intent scope: which side-effecting tools a run may call without asking.

An injected instruction does not need an untrusted argument to do harm: "create a calendar event
for tomorrow" or "message Bob (whom the user named) this link" only needs the model to call a
tool the user never asked for. The scope is derived from the user's own words, never from tool
output, by one of:

- a per-run allowlist the application already knows (``lambda ctx, texts: {"send_email"}``);
- `ScopeRules`: tool name (or glob) -> phrases of the user's request that ask for it, in Python
  or from a TOML/YAML file (``[scope] send_email = ["send", "email", "reply"]``);
- any classifier with the same signature (a small model, a lexical scorer).

A side-effecting tool (not `read_only`) outside the scope needs approval even when every
argument is trusted. Read-only tools are always in scope.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from callgate.context import RunContext
from callgate.gate.middleware.provenance.text import TOKEN

#: a scope classifier: (run context, the user's words) -> tools in scope, or None (no scope)
ScopeFn = Callable[[RunContext[Any], Sequence[str]], Collection[str] | None]

#: the endings a user's word may add to a phrase word ("send" matches "sends", "sending")
_ENDINGS = frozenset({"s", "es", "d", "ed", "ing"})


class ScopeRules:
    """Tools and the phrases of a request that put them in scope.

    A phrase matches when its words occur in order, adjacent, in the user's words; a word of the
    user may inflect a phrase word ("schedule" matches "scheduled" and "scheduling", "plan"
    matches "planned"), never extend it into another word ("mail" does not match "mailbox"). A tool
    no rule names is out of scope (fail closed). Callable, so it is itself a `ScopeFn`.
    """

    __slots__ = ("rules",)

    def __init__(self, rules: Mapping[str, Iterable[str]]) -> None:
        built: dict[str, tuple[tuple[str, ...], ...]] = {}
        for pattern, phrases in rules.items():
            if isinstance(phrases, str):
                raise TypeError(f"scope rule {pattern!r}: give a list of phrases, not a string")
            words = tuple(_phrase(p) for p in phrases if p.strip())
            if not words:
                raise ValueError(f"scope rule {pattern!r} has no phrases")
            built[pattern] = words
        self.rules = built

    @classmethod
    def from_file(cls, path: str | Path) -> ScopeRules:
        """Load ``[scope]`` (or a top-level table) from a ``.toml`` or ``.yaml`` file."""
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        data: Any
        if p.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
        if not isinstance(data, Mapping):
            raise ValueError(f"{p}: expected a table of tool -> phrases")
        table = data.get("scope", data)
        return cls(table)

    def __call__(self, ctx: RunContext[Any], texts: Sequence[str]) -> frozenset[str]:
        """The patterns (tool names or globs) whose phrases occur in the user's words."""
        tokens = [t.casefold() for text in texts for t in TOKEN.findall(text)]
        return frozenset(
            pattern
            for pattern, phrases in self.rules.items()
            if any(_occurs(phrase, tokens) for phrase in phrases)
        )


#: a gap of only these words names no one else: "let me know" asks nothing of a tool
_SELF = frozenset({"me", "us", "myself", "ourselves", "i"})

#: "let ... know": up to this many words may stand where a phrase says "..."
_GAP = 6


def _phrase(text: str) -> tuple[str, ...]:
    """A phrase's words; "..." between words becomes a gap marker ("")."""
    out: list[str] = []
    for k, part in enumerate(text.split("...")):
        if k:
            out.append("")
        out += [t.casefold() for t in TOKEN.findall(part)]
    return tuple(out)


def _occurs(phrase: tuple[str, ...], tokens: list[str], start: int = 0) -> bool:
    """Whether the phrase's words occur in order, adjacent except at its gaps."""
    if not phrase:
        return True
    if phrase[0] == "":
        rest = phrase[1:]
        return any(
            _occurs(rest, tokens, j)
            for j in range(start + 1, min(start + _GAP, len(tokens)) + 1)
            if not _SELF.issuperset(tokens[start:j])
        )
    head = phrase[: phrase.index("")] if "" in phrase else phrase
    n = len(head)
    last = len(tokens) - n + 1 if start == 0 else min(start + 1, len(tokens) - n + 1)
    for i in range(start, last):
        if all(_word_matches(head[k], tokens[i + k]) for k in range(n)) and _occurs(
            phrase[n:], tokens, i + n
        ):
            return True
    return False


def _word_matches(rule_word: str, user_word: str) -> bool:
    if user_word == rule_word:
        return True
    if len(rule_word) < 3:
        return False
    if rule_word.endswith("e") and user_word in (rule_word[:-1] + "ing", rule_word + "d"):
        return True
    if not user_word.startswith(rule_word):
        return False
    rest = user_word[len(rule_word) :]
    if rest in _ENDINGS:
        return True
    # a doubled final consonant: "planned", "dropping"
    return len(rest) >= 3 and rest[0] == rule_word[-1] and rest[1:] in ("ed", "ing")


def in_scope(tool_name: str, allowed: Collection[str]) -> bool:
    """Whether `tool_name` is named by the scope (names or globs)."""
    if tool_name in allowed:
        return True
    return any(fnmatch.fnmatchcase(tool_name, p) for p in allowed if any(c in p for c in "*?["))


#: what a user says when they want a tool whose name contains the key (a verb or a noun)
_INTENT_WORDS: dict[str, tuple[str, ...]] = {
    "send": ("send", "email", "mail", "forward", "reply", "write to", "tell", "notify", "inform"),
    "money": ("pay", "payment", "transfer", "wire", "settle", "reimburse", "refund", "send money"),
    "form": ("submit", "register", "sign up", "fill", "rsvp", "report", "apply", "enter"),
    "email": ("send", "email", "mail", "forward", "reply", "write to", "tell", "notify", "inform"),
    "mail": ("send", "email", "mail", "forward", "reply", "write to"),
    "forward": ("forward", "send", "pass on"),
    "reply": ("reply", "respond", "answer", "write back"),
    "post": ("post", "publish", "announce", "share", "tell", "update"),
    "message": ("message", "dm", "tell", "ping", "notify", "remind", "ask", "write to", "send"),
    "dm": ("message", "dm", "tell", "ping", "notify", "remind", "ask", "write to", "let ... know"),
    "notify": ("notify", "tell", "inform", "alert", "remind", "let ... know"),
    "create": ("create", "add", "schedule", "book", "set up", "make", "new", "arrange", "plan"),
    "add": ("add", "create", "put", "insert", "include", "new"),
    "schedule": ("schedule", "book", "set up", "arrange", "plan", "add", "put"),
    "book": ("book", "reserve", "schedule"),
    "invite": ("invite", "add", "include"),
    "delete": ("delete", "remove", "trash", "clean up", "get rid", "erase", "clear"),
    "remove": ("remove", "delete", "trash", "clean up", "get rid", "take off"),
    "cancel": ("cancel", "call off", "drop", "delete", "remove", "clear"),
    "archive": ("archive", "clean up", "file away"),
    "update": ("update", "edit", "change", "modify", "set", "fix", "correct", "rename", "move"),
    "edit": ("edit", "update", "change", "modify", "fix", "correct", "rewrite"),
    "move": ("move", "reschedule", "shift", "push", "relocate"),
    "rename": ("rename", "call it"),
    "share": ("share", "give access", "grant", "send"),
    "grant": ("grant", "give access", "share", "allow"),
    "pay": ("pay", "payment", "transfer", "wire", "settle", "reimburse", "refund", "send money"),
    "transfer": ("transfer", "pay", "wire", "send money", "move money"),
    "refund": ("refund", "reimburse", "pay back"),
    "submit": ("submit", "register", "sign up", "fill", "send", "post", "report"),
    "buy": ("buy", "order", "purchase", "get me"),
    "order": ("order", "buy", "purchase"),
}


def lexical_scope(
    tools: Iterable[Any], extra: Mapping[str, Iterable[str]] | None = None
) -> ScopeRules:
    """A ready-made lexical classifier: each side-effecting tool is in scope when the user's
    words ask for what its name says ("send_email" when they say send, email, forward, reply...).

    `tools` are `Tool` objects (read-only ones are skipped: they are always in scope); `extra`
    adds phrases per tool name. A name with no known word is in scope only through `extra`
    or its own name's words.
    """
    rules: dict[str, list[str]] = {}
    for t in tools:
        if getattr(getattr(t, "annotations", None), "read_only", False):
            continue
        words = [w.casefold() for w in TOKEN.findall(t.name.replace("_", " "))]
        phrases: list[str] = []
        for w in words:
            phrases += _INTENT_WORDS.get(w, ())
        rules[t.name] = phrases or words
    for name, more in (extra or {}).items():
        rules.setdefault(name, []).extend(more)
    return ScopeRules(rules)
