"""The helpers that replaced copies of the same code: each keeps the promise every copy made."""

from __future__ import annotations

import sqlite3
import types
from pathlib import Path
from typing import Any

import pytest

import callgate
import callgate.providers
from callgate._lazy import import_object, lazy_exports
from callgate._storage import (
    SqliteStore,
    StoreNotFoundError,
    open_store,
    pg_table_name,
)
from callgate.audit.record import AuditEntry
from callgate.messages import Message, ToolResult
from callgate.policy.conditions import PolicyError, parse_condition
from callgate.policy.engine import PythonRule, Rule
from callgate.providers._retry import ProviderFailure, classified
from callgate.providers.openai.chat import OpenAIChatModel, convert_messages, usage_of
from callgate.server.api import entry_json

# --- lazy package names --------------------------------------------------------------------


def test_lazy_exports_loads_once_and_caches_in_the_package() -> None:
    namespace: dict[str, Any] = {}
    load, names = lazy_exports("pkg", {"dumps": "json"}, namespace)
    import json

    assert load("dumps") is json.dumps
    assert namespace["dumps"] is json.dumps  # later lookups never reach __getattr__
    assert names() == ["dumps"]
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        load("loads")


def test_real_packages_load_lazily_and_refuse_unknown_names() -> None:
    assert callgate.providers.RetryPolicy.__name__ == "RetryPolicy"
    assert "OpenAIChatModel" in dir(callgate.providers)
    for module in (callgate, callgate.providers):
        with pytest.raises(AttributeError, match="no attribute 'NotAName'"):
            _ = module.NotAName


def test_import_object_follows_dotted_attributes() -> None:
    assert import_object("os.path:join") is __import__("os").path.join
    assert import_object("callgate.messages:Message.user").__name__ == "user"
    for spec in ("os.path", ":join", "os.path:"):
        with pytest.raises(ValueError, match="MODULE:ATTRIBUTE"):
            import_object(spec)
    with pytest.raises(AttributeError):
        import_object("os.path:no_such_name")


# --- storage -------------------------------------------------------------------------------


class _Backend:
    """Records how `open_store` called a database backend."""

    def __init__(self, location: str, **kwargs: Any) -> None:
        self.location = location
        self.kwargs = kwargs


def test_open_store_picks_the_backend_by_target(tmp_path: Path) -> None:
    memory = object()
    common: dict[str, Any] = {
        "what": "widgets",
        "memory": lambda: memory,
        "sqlite": f"{__name__}:_Backend",
        "postgres": f"{__name__}:_Backend",
    }
    assert open_store(":memory:", **common) is memory
    lite = open_store(f"sqlite:///{tmp_path}/w.db", must_exist=True, extra=1, **common)
    assert (lite.location, lite.kwargs) == (f"{tmp_path}/w.db", {"must_exist": True, "extra": 1})
    pg = open_store("postgresql://db/app", **common)
    assert (pg.location, pg.kwargs) == ("postgresql://db/app", {"must_exist": False})
    with pytest.raises(ValueError, match="widgets cannot be kept in redis"):
        open_store("redis://localhost", **common)


class _Things(SqliteStore):
    TABLE = "things"
    SCHEMA = "CREATE TABLE IF NOT EXISTS things (id INTEGER PRIMARY KEY)"
    HOLDS = "things"
    ROW_FACTORY = sqlite3.Row


def test_sqlite_store_creates_its_table_or_refuses_a_file_without_it(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError):
        _Things(tmp_path / "missing.db", must_exist=True)
    assert not (tmp_path / "missing.db").exists()

    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(StoreNotFoundError, match="holds no things"):
        _Things(other, must_exist=True)

    store = _Things(tmp_path / "t.db")
    store._db.execute("INSERT INTO things (id) VALUES (7)")
    assert store._db.execute("SELECT id FROM things").fetchone()["id"] == 7  # row factory set
    store.close()
    reopened = _Things(tmp_path / "t.db", must_exist=True)
    assert reopened.path == str(tmp_path / "t.db")
    reopened.close()
    with pytest.raises(sqlite3.ProgrammingError):
        reopened._db.execute("SELECT 1")


def test_pg_table_name_refuses_anything_but_a_plain_identifier() -> None:
    assert pg_table_name("callgate_runs") == "callgate_runs"
    for bad in ("x; DROP TABLE y", 'a"b', "1abc", "", "a" * 64):
        with pytest.raises(ValueError, match="plain SQL identifier"):
            pg_table_name(bad)
    pytest.importorskip("psycopg")
    from callgate.approvals.stores.postgres import PgApprovalStore
    from callgate.runs.stores.postgres import PgRunStore

    # refused before any connection is tried (there is no server at this address)
    for store in (PgApprovalStore, PgRunStore):
        with pytest.raises(ValueError, match="plain SQL identifier"):
            store("postgresql://127.0.0.1:1/none", table="x; DROP TABLE y")


# --- policy --------------------------------------------------------------------------------


def test_rules_refuse_a_misspelt_selector_keyword() -> None:
    with pytest.raises(TypeError, match="Rule\\(\\) got an unexpected keyword argument 'tool'"):
        Rule("r", "allow", tool="refund")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="PythonRule\\(\\) got an unexpected keyword argument"):
        PythonRule("r", lambda t, a, c: None, role="x")  # type: ignore[call-arg]
    rule = Rule("r", "allow", tools="refund", roles=["support"])
    assert rule.selectors.tools == ("refund",)
    assert rule.selectors.roles == frozenset({"support"})
    with pytest.raises(PolicyError, match="must not be empty"):
        Rule("r", "allow", users=[])


def test_condition_paths_name_the_fields_of_their_scope() -> None:
    with pytest.raises(PolicyError, match=r"unknown context field 'ctx.nope'.*ctx\.roles"):
        parse_condition("ctx.nope == 1")
    with pytest.raises(PolicyError, match=r"unknown tool field 'tool.nope'.*tool\.tier"):
        parse_condition("tool.nope == 1")
    assert parse_condition("a == 1 or b == 2 and not c").text == "a == 1 or b == 2 and not c"


# --- providers -----------------------------------------------------------------------------


def test_provider_base_checks_the_model_and_keeps_uniform_keywords() -> None:
    with pytest.raises(ValueError, match="non-empty model id"):
        OpenAIChatModel("", api_key="k")
    with pytest.raises(TypeError):
        OpenAIChatModel("m", api_key="k", max_retry=2)  # type: ignore[call-arg]
    model = OpenAIChatModel("m", api_key="k", max_retries=5, max_tokens=9, extra_body={"a": 1})
    assert (model.name, model.model, model.retry.max_retries) == ("m", "m", 5)
    assert (model.max_tokens, model.extra_body, model.max_tokens_field) == (
        9,
        {"a": 1},
        "max_completion_tokens",
    )


def test_convert_messages_keeps_order_and_refuses_broken_messages() -> None:
    result = ToolResult(call_id="c1", name="calc", content="42")
    out = convert_messages(
        [Message.user("hi"), Message.assistant("ok"), Message.tool(result)],
        text=lambda m: {"t": m.content},
        assistant=lambda m: [{"a": m.content}, {"a2": 1}],
        result=lambda r: {"r": r.call_id},
    )
    assert out == [{"t": "hi"}, {"a": "ok"}, {"a2": 1}, {"r": "c1"}]
    kw: dict[str, Any] = {
        "text": lambda m: {},
        "assistant": lambda m: [],
        "result": lambda r: {},
    }
    with pytest.raises(ValueError, match=r"messages\[1\] has role 'tool' but no tool_result"):
        convert_messages([Message.user("x"), Message("tool", "orphan")], **kw)
    with pytest.raises(ValueError, match=r"messages\[0\] has unknown role 'robot'"):
        convert_messages([Message("robot", "x")], **kw)  # type: ignore[arg-type]


def test_classified_lets_bugs_through_as_themselves() -> None:
    failure = ProviderFailure("overloaded", status=529, retryable=True)
    assert classified(RuntimeError("x"), lambda exc: failure) is failure
    bug = KeyError("not a provider failure")
    with pytest.raises(KeyError) as caught:
        classified(bug, lambda exc: None)
    assert caught.value is bug


def test_usage_of_reads_either_api_naming() -> None:
    chat = types.SimpleNamespace(
        prompt_tokens=10,
        completion_tokens=3,
        prompt_tokens_details=types.SimpleNamespace(cached_tokens=4),
    )
    usage = usage_of(chat, input_field="prompt_tokens", output_field="completion_tokens")
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (10, 3, 4)
    responses = types.SimpleNamespace(input_tokens=7, output_tokens=None)
    usage = usage_of(responses, input_field="input_tokens", output_field="output_tokens")
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (7, 0, 0)
    assert usage_of(None, input_field="x", output_field="y").input_tokens == 0


# --- server --------------------------------------------------------------------------------


def test_entry_json_shows_every_field_but_the_chain_link() -> None:
    entry = AuditEntry(
        seq=3,
        ts=1.5,
        kind="call",
        conversation_id="c",
        run_id="r",
        user_id="u",
        tenant="t",
        tool="refund",
        decision="allow",
        data={"ok": True},
        prev_hash="p" * 64,
        hash="h" * 64,
    )
    out = entry_json(entry)
    assert "prev_hash" not in out
    assert list(out) == [
        "seq",
        "ts",
        "kind",
        "conversation_id",
        "run_id",
        "user_id",
        "tenant",
        "tool",
        "decision",
        "data",
        "hash",
    ]
    assert out["data"] == {"ok": True} and out["hash"] == "h" * 64
