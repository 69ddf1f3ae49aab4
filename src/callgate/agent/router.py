"""Routing for large tool sets: offer the model only the k tools that matter for this turn.

A model choosing among 5 tools picks right far more often than one choosing among 200, and each
tool it is shown costs input tokens on every turn. A `Router` ranks the tools the run may see
against the conversation before each model call and offers the best k:

- lexical: BM25 over each tool's name (split into words), description and parameter names and
  descriptions, queried with the user's messages (the latest one weighted up);
- an optional classifier callback (a small model, a rule) whose picks come first;
- always-included tools, and tools the run already called (a task in progress keeps its tools).

The router is also gate middleware with a `visible` hook, so the gate applies the same choice at
call time: a routed-out tool called by name is unknown to the run, exactly like a tool the run
cannot see (rendered with "did you mean", counted against the correction budget, recorded).
Policy is untouched: routing only narrows what the run sees, it never allows anything.

Pure Python, no dependency: an index of a few thousand tools builds in milliseconds and is
rebuilt only when the set of tools changes.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from callgate.context import RunContext
from callgate.gate.protocols import Invocation, Next
from callgate.messages import Message, ToolResult
from callgate.tools.definition import Tool, ToolSpec

#: a classifier gets the query text and the candidate specs and returns the names it picks
Classifier = Callable[[str, Sequence[ToolSpec]], Sequence[str] | Awaitable[Sequence[str]]]

_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_STOP = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "for",
        "from",
        "get",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "you",
        "your",
    }
)


def tokens(text: str) -> list[str]:
    """Lower-case words, camelCase and snake_case split, stop words dropped, a plural 's'
    folded (so "invoices" finds "invoice")."""
    out = []
    for w in _WORD.findall(text):
        w = w.lower()
        if w in _STOP:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return out


def spec_text(spec: ToolSpec) -> str:
    """What a tool is matched on: its name (twice: names are the densest signal), description
    and parameter names and descriptions."""
    parts = [spec.name, spec.name, spec.description]
    props = spec.parameters.get("properties", {})
    if isinstance(props, dict):
        for pname, p in props.items():
            parts.append(str(pname))
            if isinstance(p, dict) and isinstance(p.get("description"), str):
                parts.append(p["description"])
    return " ".join(parts)


class BM25Index:
    """Okapi BM25 over a fixed list of documents (k1=1.5, b=0.75)."""

    def __init__(self, docs: Sequence[Sequence[str]], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.tf = [Counter(d) for d in docs]
        self.len = [len(d) for d in docs]
        self.avg = (sum(self.len) / len(docs)) if docs else 0.0
        df: Counter[str] = Counter()
        for c in self.tf:
            df.update(c.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.postings: dict[str, list[int]] = {}
        for i, c in enumerate(self.tf):
            for t in c:
                self.postings.setdefault(t, []).append(i)

    def scores(self, query: Iterable[str]) -> dict[int, float]:
        """Score of every document sharing a term with the query (others score 0)."""
        out: dict[int, float] = {}
        q = Counter(query)
        for term, qn in q.items():
            idf = self.idf.get(term)
            if idf is None:
                continue
            for i in self.postings[term]:
                f = self.tf[i][term]
                norm = f + self.k1 * (1 - self.b + self.b * self.len[i] / (self.avg or 1.0))
                out[i] = out.get(i, 0.0) + qn * idf * f * (self.k1 + 1) / norm
        return out


@dataclass(frozen=True, slots=True)
class RoutingChoice:
    """What a router offered for one turn, in rank order, and from how many candidates."""

    tools: tuple[str, ...]
    candidates: int
    scores: dict[str, float] = field(default_factory=dict)


class Router:
    """Pick the `k` tools most relevant to the conversation (see the module docstring).

    `always`: names offered on every turn (not counted in `k`). `classifier`: an optional
    callback whose picks are offered first. `sticky`: keep tools the run already called.
    `min_tools`: below this many candidates nothing is routed out (routing 6 tools saves
    nothing and only risks hiding the right one).
    """

    def __init__(
        self,
        k: int = 8,
        *,
        always: Iterable[str] = (),
        classifier: Classifier | None = None,
        sticky: bool = True,
        min_tools: int | None = None,
        max_runs: int = 4096,
    ) -> None:
        if k < 1:
            raise ValueError("Router(k=...) must offer at least one tool")
        self.k = k
        self.always = frozenset(always)
        self.classifier = classifier
        self.sticky = sticky
        self.min_tools = k if min_tools is None else min_tools
        self._max_runs = max_runs
        self._chosen: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._index: tuple[tuple[str, ...], BM25Index] | None = None

    # the ranking -----------------------------------------------------------------------------

    def _bm25(self, specs: Sequence[ToolSpec]) -> BM25Index:
        key = tuple(f"{s.name}\0{s.version}" for s in specs)
        if self._index is None or self._index[0] != key:
            self._index = (key, BM25Index([tokens(spec_text(s)) for s in specs]))
        return self._index[1]

    def rank(self, query: str, specs: Sequence[ToolSpec]) -> list[tuple[str, float]]:
        """Every candidate with its BM25 score, best first (ties keep the toolset's order)."""
        scores = self._bm25(specs).scores(tokens(query))
        order = sorted(range(len(specs)), key=lambda i: (-scores.get(i, 0.0), i))
        return [(specs[i].name, scores.get(i, 0.0)) for i in order]

    async def choose(
        self, query: str, specs: Sequence[ToolSpec], used: Iterable[str] = ()
    ) -> RoutingChoice:
        """The tools to offer: always-included and already used ones, the classifier's picks,
        then the best BM25 matches up to `k`."""
        names = [s.name for s in specs]
        if len(specs) <= self.min_tools:
            return RoutingChoice(tuple(names), len(specs))
        present = set(names)
        picked: list[str] = [n for n in names if n in self.always]
        if self.sticky:
            picked += [n for n in dict.fromkeys(used) if n in present and n not in picked]
        budget = self.k + len(picked)
        if self.classifier is not None:
            got = self.classifier(query, specs)
            chosen = await got if asyncio.iscoroutine(got) or isinstance(got, Awaitable) else got
            picked += [n for n in chosen if n in present and n not in picked][: self.k]
        ranked = self.rank(query, specs)
        for n, _ in ranked:
            if len(picked) >= budget:
                break
            if n not in picked:
                picked.append(n)
        scores = {n: round(s, 4) for n, s in ranked if n in picked}
        return RoutingChoice(tuple(picked), len(specs), scores)

    # the run's view --------------------------------------------------------------------------

    async def route(
        self, tools: Sequence[Tool], messages: Sequence[Message], ctx: RunContext[Any]
    ) -> RoutingChoice:
        """Choose for this turn of `ctx`'s run and remember the choice for the gate."""
        self._chosen.pop(ctx.run_id, None)
        choice = await self.choose(
            query_of(messages), [t.spec for t in tools], used=used_tools(messages)
        )
        self._chosen[ctx.run_id] = frozenset(choice.tools)
        while len(self._chosen) > self._max_runs:
            self._chosen.popitem(last=False)
        return choice

    def forget(self, ctx: RunContext[Any]) -> None:
        """Drop a run's choice (the run ended); its tools are all visible again."""
        self._chosen.pop(ctx.run_id, None)

    def visible(self, tool: Tool, ctx: RunContext[Any]) -> bool:
        """Gate hook, at list and call time: only the routed tools of this run's current turn
        (every tool, for a run the router has not routed)."""
        chosen = self._chosen.get(ctx.run_id)
        return chosen is None or tool.name in chosen

    async def __call__(self, inv: Invocation, next: Next) -> ToolResult:
        return await next(inv)


def query_of(messages: Sequence[Message], *, recent: int = 3) -> str:
    """The router's query: the last few user messages, the latest one repeated (it says what is
    asked now; earlier ones give context)."""
    users = [m.content for m in messages if m.role == "user" and m.content]
    if not users:
        return ""
    return " ".join([*users[-recent:], users[-1]])


def used_tools(messages: Sequence[Message]) -> list[str]:
    """Names of the tools the conversation already called, in order of first use."""
    out: list[str] = []
    for m in messages:
        for c in m.tool_calls:
            if c.name not in out:
                out.append(c.name)
    return out


__all__ = ["BM25Index", "Classifier", "Router", "RoutingChoice", "query_of", "tokens"]
