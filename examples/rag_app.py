"""Agentic RAG beside action tools: the property assistant's handbook, searchable by the model.

`search_docs` looks the handbook (``docs/property_handbook.md``: lease rules, maintenance
policies, building manuals) up in a SQLite FTS5 index - embedded, in memory, no server. The
same assistant also has the live tools of `property_app`, so one conversation can answer "how
do I..." from the documents and "what is the state of... / do this" from the database, and
the mixed kind ("why is X and what should I do") from both.

    .venv/bin/python examples/rag_app.py            # a three-question conversation
"""

from __future__ import annotations

import atexit
import re
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parent))

from property_app import TOOLS as PROPERTY_TOOLS
from property_app import Database

from callgate import Agent, Message, Model, RunContext, RunResult, tool

HANDBOOK = Path(__file__).resolve().parent / "docs" / "property_handbook.md"
_HEADING = re.compile(r"^## ([a-z0-9-]+): (.+)$")
#: words too common to help a lexical search
_STOP = frozenset(
    """a an and are at be can do does for from how i in is it my of on or should the to what
    when where which who why with you your""".split()  # noqa: SIM905 - a word list reads better
)


class Doc(BaseModel):
    id: str
    title: str
    text: str


def parse_handbook(path: Path = HANDBOOK) -> list[Doc]:
    """One `Doc` per ``## id: Title`` section."""
    docs: list[Doc] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _HEADING.match(line)
        if m:
            docs.append(Doc(id=m.group(1), title=m.group(2), text=""))
        elif docs and line.strip():
            docs[-1].text = (docs[-1].text + " " + line.strip()).strip()
    return docs


class DocIndex:
    """An FTS5 index of the handbook. SQLite connections are per thread (tools run in worker
    threads), so each thread builds its own in-memory copy on first use; it is small."""

    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(":memory:")
            conn.execute("CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, title, text)")
            conn.executemany(
                "INSERT INTO docs VALUES (?, ?, ?)", [(d.id, d.title, d.text) for d in self.docs]
            )
            self._local.conn = conn
        return conn

    def search(self, query: str, limit: int = 3) -> list[Doc]:
        """Best matches first (BM25). The query is reduced to its words, joined with OR, so any
        text a model writes is a valid FTS5 query and no word is required to match."""
        words = [w for w in re.findall(r"[a-z0-9]+", query.lower()) if w not in _STOP]
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        rows = self._conn().execute(
            "SELECT id, title, text FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, 0, 5, 1) "
            "LIMIT ?",
            [match, limit],
        )
        return [Doc(id=r[0], title=r[1], text=r[2]) for r in rows]


class AssistantDeps(Database):
    """The live database plus the handbook index (the property tools accept it as their
    `Database`; `search_docs` uses its `docs`)."""

    def __init__(self, path: Path, docs: DocIndex) -> None:
        super().__init__(path)
        self.docs = docs


@tool(read_only=True)
def search_docs(
    ctx: RunContext,
    query: Annotated[str, Field(min_length=2, max_length=200)],
) -> list[Doc]:
    """Search the agency's handbook (lease rules, maintenance policies, building manuals) for
    how-to and policy questions. Live facts (prices, open requests) come from the other tools.

    Args:
        query: What to look for, in a few words, e.g. "end lease notice".
    """
    deps = ctx.deps
    assert isinstance(deps, AssistantDeps), "run with RunContext(deps=fresh_assistant())"
    return deps.docs.search(query)


TOOLS = [*PROPERTY_TOOLS, search_docs]

_INDEX = DocIndex(parse_handbook())
_TMP = tempfile.TemporaryDirectory(prefix="callgate-rag-")
atexit.register(_TMP.cleanup)
_count = 0


def _fresh_path() -> Path:
    global _count
    _count += 1
    return Path(_TMP.name) / f"run{_count}" / "properties.db"


def fresh_database() -> Database:
    """A new sample database for one run (golden runs must not see each other's writes)."""
    return Database(_fresh_path())


def fresh_assistant() -> AssistantDeps:
    """A new sample database and the shared handbook index, for one run."""
    return AssistantDeps(_fresh_path(), _INDEX)


INSTRUCTIONS = (
    "You are the assistant of a property agency. For how-to and policy questions, search the "
    "handbook with search_docs and answer from it. For the state of a property or its "
    "maintenance requests, use the live tools. Answer in one or two short sentences."
)

CONVERSATION = [
    "How much notice do I need to give to end my lease?",
    "What maintenance requests are open at P-104?",
    "The heating at P-104 is not working. Why is that urgent and what should I check first?",
]


def converse(model: Model, questions: list[str] = CONVERSATION) -> list[RunResult]:
    """One conversation: each question is a run that sees the earlier questions and answers."""
    agent = Agent(model, TOOLS, instructions=INSTRUCTIONS)
    deps = fresh_assistant()
    history: list[Message] = []
    results: list[RunResult] = []
    for question in questions:
        print(f"user: {question}")
        result = agent.run_sync([*history, Message.user(question)], ctx=RunContext(deps=deps))
        for m in result.messages[len(history) :]:
            for c in m.tool_calls:
                print(f"  tool: {c.name} {c.arguments}")
        print(f"assistant: {result.text}\n")
        history = [m for m in result.messages if m.role in ("user", "assistant") and m.content]
        results.append(result)
    return results


def main() -> None:
    import argparse

    from callgate.eval.runner import model_factory

    p = argparse.ArgumentParser(description="RAG beside action tools, on the local model")
    p.add_argument("--model", default="local", help="local | module:attr")
    converse(model_factory(p.parse_args().model)(None))


if __name__ == "__main__":
    main()
