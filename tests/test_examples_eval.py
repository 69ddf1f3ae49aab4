"""Each example of the evaluation and governance tour runs, on a scripted model or a scripted
HTTP server, and does what its docstring says."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from callgate.models import ModelRequest
from callgate.testing import FunctionModel, call

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))


def test_policy_file_with_roles_and_tenants(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    import policy_roles

    report = asyncio.run(policy_roles.main())
    ana, marco, vic, sam = (report[k] for k in policy_roles.PEOPLE)
    assert ana["outcomes"] == {
        "get_property(P-101)": "ran",
        "list_maintenance_requests(P-104)": "denied (lisbon-office-scope)",
        "schedule_maintenance(P-101)": "ran after approval",
        "schedule_maintenance(P-104)": "denied (lisbon-office-scope)",
        "send_tenant_data(P-101)": "hidden, refused",
    }
    assert marco["outcomes"]["schedule_maintenance(P-104)"] == "ran"  # a manager, no approval
    assert marco["outcomes"]["get_property(P-101)"] == "denied (porto-office-scope)"
    assert "schedule_maintenance" not in vic["visible"]  # list time agrees with call time
    assert vic["outcomes"]["schedule_maintenance(P-104)"] == "hidden, refused"
    assert sam["visible"] == [] and set(sam["outcomes"].values()) == {"hidden, refused"}
    assert "send_tenant_data" not in ana["visible"] + marco["visible"]


def test_durable_approvals_across_three_processes() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "durable_approvals.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = done.stdout
    assert "1. ana's run: paused" in out
    assert "2. marta, in another process: apr_" in out and "approved" in out
    assert "3. resumed: completed" in out
    assert "bookings made: 1" in out  # the approved booking ran exactly once


def test_audit_verified_replayed_and_tampering_found(capsys: pytest.CaptureFixture[str]) -> None:
    import audit_verify_replay

    codes = audit_verify_replay.main()
    assert codes == {"verify": 0, "replay-same": 0, "replay-frozen": 1, "verify-tampered": 1}
    out = capsys.readouterr().out
    assert "DIFF book schedule_maintenance" in out and "same look get_property" in out
    assert "seq 1: edited" in out


def test_golden_runner_example_catches_the_changed_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import golden_runner

    problems = golden_runner.main(quiet=True)
    regressed = {p.split(":")[0] for p in problems}
    # exactly the cases that assert a max_price filter regress, and the overall rate
    assert "search-lisbon-apartments-under-400k" in regressed
    assert "search-faro-under-300k" in regressed
    assert "details-p105" not in regressed and "maintenance-open-p101" not in regressed
    assert any(p.startswith("overall pass rate 100.0%") for p in problems)


def _rag_model(req: ModelRequest) -> Any:
    """A stand-in for a model that routes: handbook for "how", live tools for state, both for
    "why ... what should I". It answers from what the tools returned."""
    last = req.messages[-1]
    if last.role == "tool":
        results = [
            m.tool_result.content for m in req.messages if m.role == "tool" and m.tool_result
        ]
        return " | ".join(results)
    q = last.content.lower()
    calls = []
    if "p-104" in q:
        calls.append(call("list_maintenance_requests", {"property_id": "P-104"}))
    if q.startswith("how") or "what should i" in q:
        calls.append(call("search_docs", {"query": q}))
    return calls


def test_rag_example_answers_from_docs_and_live_tools() -> None:
    import rag_app

    model = FunctionModel(_rag_model)
    notice, state, mixed = rag_app.converse(model)
    assert [c.name for m in notice.messages for c in m.tool_calls] == ["search_docs"]
    assert "60 days" in notice.text  # from the lease-notice document, found by FTS5
    assert "Heating not working" in state.text and "search_docs" not in str(state.results)
    names = {r.name for r in mixed.results}
    assert names == {"list_maintenance_requests", "search_docs"}
    assert "boiler pressure" in mixed.text  # the heating document
    # one conversation: the third request carried the first two questions
    assert sum(m.role == "user" for m in model.requests[-1].messages) == 3


def test_rag_index_ranks_and_never_chokes_on_model_text() -> None:
    import rag_app

    index = rag_app.DocIndex(rag_app.parse_handbook())
    assert len(index.docs) >= 30
    assert index.search("gas smell")[0].id == "maint-gas"
    assert index.search("how much notice to end my lease?")[0].id == "lease-notice"
    # FTS5 syntax in a query is taken as words, not operators
    assert index.search('deposit" OR NEAR(x') and index.search("***") == []


class _FakeOpenAI(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions that replies from a script."""

    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        if body["messages"][-1]["role"] == "tool":
            message = {"role": "assistant", "content": "The heating at P-104 is not working."}
            finish = "stop"
        else:
            args = json.dumps({"property_id": "P-104"})
            fn = {"name": "list_maintenance_requests", "arguments": args}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": fn}],
            }
            finish = "tool_calls"
        reply = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_openai_compatible_server_example() -> None:
    pytest.importorskip("openai")
    import openai_compatible

    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        result = openai_compatible.ask(base, "fake-model")
    finally:
        server.shutdown()
    first, second = _FakeOpenAI.bodies[-2:]
    assert first["tool_choice"] == {
        "type": "function",
        "function": {"name": "list_maintenance_requests"},
    }
    assert "max_tokens" in first and "max_completion_tokens" not in first
    assert {t["function"]["name"] for t in first["tools"]} >= {"get_property", "search_properties"}
    tool_msg = second["messages"][-1]
    assert tool_msg["role"] == "tool" and "Heating not working" in tool_msg["content"]
    assert result.status == "completed" and "heating" in result.text
