"""Whole conversations through the gateway as server-sent events, paused for approval and
resumed by the caller after an approver decided in the inbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from callgate import Agent, Approvals, AuditLog, Gate
from callgate.approvals import open_approval_store
from callgate.runs import open_run_store
from callgate.server import ApiKeys, Authenticator, create_app
from callgate.testing import ScriptedModel, call
from tests.mcp_fixtures import tools as fx


def _events(text: str) -> list[tuple[str, dict]]:
    out = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CG_RUNLOG", str(tmp_path / "run.log"))
    keys = ApiKeys()
    key = {}
    for user, roles in (("ana", ["support"]), ("boss", ["approver"]), ("eve", ["support"])):
        k, e = ApiKeys.new_key(user, roles, "acme")
        keys.add(e)
        key[user] = {"Authorization": f"Bearer {k}"}
    gate = Gate(
        fx.toolset,
        policy=fx.POLICY,
        approver=Approvals(open_approval_store(str(tmp_path / "a.db"))),
        observers=[AuditLog.open(str(tmp_path / "audit.db"))],
    )
    model = ScriptedModel(
        [
            call("lookup_order", {"order_id": "A-9"}, id="t1"),
            call("refund", {"order_id": "A-9", "amount": 20}, id="t2"),
            "Refunded 20 EUR on A-9.",
        ]
    )
    agent = Agent(model, gate, run_store=open_run_store(str(tmp_path / "runs.db")))
    app = create_app(gate, Authenticator(keys=keys), agent=agent, mcp=False)
    with TestClient(app) as c:
        yield c, key, tmp_path / "run.log"


def test_conversation_streams_pauses_and_resumes(setup) -> None:
    c, key, runlog = setup
    r = c.post(
        "/v1/conversations",
        headers=key["ana"],
        json={"message": "Refund 20 on order A-9", "run_id": "chat-1"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    kinds = [k for k, _ in events]
    assert kinds.count("tool_result") == 2 and kinds[-1] == "done"
    results = [d for k, d in events if k == "tool_result"]
    assert results[0]["ok"] and "shipped" in results[0]["content"]
    assert results[1]["error_kind"] == "pending_approval"
    done = events[-1][1]
    assert done["status"] == "paused" and done["run_id"] == "chat-1"
    approval_id = results[1]["approval_id"]
    assert done["pending"] == [approval_id]
    assert not runlog.exists()

    # another caller cannot resume ana's run, even knowing its id
    assert c.post("/v1/runs/chat-1/resume", headers=key["eve"]).status_code == 404
    still = c.post("/v1/runs/chat-1/resume", headers=key["ana"]).json()
    assert still["status"] == "paused" and not runlog.exists()

    assert c.post(f"/v1/approvals/{approval_id}/approve", headers=key["boss"]).status_code == 200
    final = c.post("/v1/runs/chat-1/resume", headers=key["ana"]).json()
    assert final["status"] == "completed" and final["output"] == "Refunded 20 EUR on A-9."
    assert runlog.read_text().splitlines() == ["refund A-9 20.0"]
    assert c.post("/v1/runs/chat-1/resume", headers=key["ana"]).status_code == 404  # finished


def test_conversation_input_is_checked(setup) -> None:
    c, key, _ = setup
    assert c.post("/v1/conversations", json={"message": "hi"}).status_code == 401
    bad = c.post("/v1/conversations", headers=key["ana"], json={"message": ""})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"
