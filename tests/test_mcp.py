"""MCP in both directions, on both transports, with the official SDK's client and servers.

- `callgate mcp serve` (a callgate gate as an MCP server) driven by the SDK's `Client` over stdio
  and streamable HTTP: list-time visibility, annotations, a denied call, approval by elicitation
  (both protocol eras) and a pending approval completed from another process.
- `callgate mcp proxy` in front of an SDK server (no callgate inside): validation against the
  upstream's own schemas before forwarding, policy, approval, audit, and an upstream that dies in
  the middle of a call.
- `import_tools`: an SDK server's tools used through a `Gate` like local tools.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from callgate import Approvals, AuditLog, Gate, Policy, Rule, RunContext, ToolCall
from callgate.approvals import MemoryApprovalStore, open_approval_store
from callgate.mcp import import_tools
from callgate.mcp.client import annotations_from_mcp

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
UPSTREAM = f"{PY} -m tests.mcp_fixtures.upstream"

PROXY_POLICY = """\
rules:
  - name: sums
    tools: add
    effect: allow
  - name: deletions
    tools: delete_file
    effect: approve
    reason: deleting files cannot be undone
  - name: crash-test
    tools: crash
    effect: allow
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CG_APPROVALS=str(tmp_path / "approvals.db"),
        CG_AUDIT=str(tmp_path / "audit.db"),
        CG_RUNLOG=str(tmp_path / "run.log"),
        UPSTREAM_LOG=str(tmp_path / "upstream.log"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    env.update(extra)
    return env


def _stdio(tmp_path: Path, *argv: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=PY, args=["-m", "callgate.cli", *argv], env=_env(tmp_path), cwd=str(ROOT)
    )


def _serve(tmp_path: Path, *extra: str) -> StdioServerParameters:
    return _stdio(tmp_path, "mcp", "serve", "tests.mcp_fixtures.tools:gate", *extra)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _approve_elsewhere(tmp_path: Path, approval_id: str, verb: str = "approve") -> None:
    """Decide with the command line in a separate process sharing the SQLite store."""
    out = subprocess.run(
        [
            PY,
            "-m",
            "callgate.cli",
            "approvals",
            verb,
            approval_id,
            "--db",
            str(tmp_path / "approvals.db"),
            "--by",
            "lead",
        ],
        env=_env(tmp_path),
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited before listening"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _text(result: types.CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))


# --- serve -----------------------------------------------------------------------------------


async def test_serve_stdio_shows_only_what_the_caller_may_see(tmp_path: Path) -> None:
    async with Client(_serve(tmp_path, "--user", "ana")) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert set(tools) == {"lookup_order", "refund", "slow_report"}  # list_users: admins
        ann = tools["refund"].annotations
        assert ann is not None and ann.destructive_hint is True and ann.read_only_hint is False
        ro = tools["lookup_order"].annotations
        assert ro is not None and ro.read_only_hint is True and ro.destructive_hint is False
        assert ro.open_world_hint is False
        assert "order_id" in tools["lookup_order"].input_schema["properties"]

        ok = await c.call_tool("lookup_order", {"order_id": "A-1"})
        assert not ok.is_error and ok.structured_content == {"order_id": "A-1", "status": "shipped"}
        # a tool the caller cannot see is refused by name too, and nothing runs
        hidden = await c.call_tool("list_users", {})
        assert hidden.is_error and "no tool named 'list_users'" in _text(hidden)
        bad = await c.call_tool("lookup_order", {"order": "A-1"})
        assert bad.is_error and "did you mean 'order_id'" in _text(bad)

    async with Client(_serve(tmp_path, "--user", "root", "--role", "admin")) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert "list_users" in names
        admin = await c.call_tool("list_users", {})
        assert not admin.is_error and "ana" in _text(admin)

    audit = AuditLog.open(str(tmp_path / "audit.db"))
    assert audit.verify().ok
    users = {e.user_id for e in audit.entries()}
    assert {"ana", "root"} <= users


async def test_pending_approval_completed_from_another_process(tmp_path: Path) -> None:
    runlog = tmp_path / "run.log"
    args = {"order_id": "A-7", "amount": 12.5, "card_number": "4000123412341234"}
    async with Client(_serve(tmp_path, "--user", "ana")) as c:  # no elicitation support
        first = await c.call_tool("refund", args)
        assert not first.is_error
        assert isinstance(first.structured_content, dict)
        assert first.structured_content["status"] == "pending_approval"
        approval_id = first.structured_content["approval_id"]
        assert approval_id and approval_id in _text(first)
        assert _lines(runlog) == []

        again = await c.call_tool("refund", args)  # still pending: same request, not a new one
        assert again.structured_content["approval_id"] == approval_id
        assert _lines(runlog) == []

        _approve_elsewhere(tmp_path, approval_id)
        done = await c.call_tool("refund", args)
        assert not done.is_error and "refunded 12.5 on A-7" in _text(done)
        assert _lines(runlog) == ["refund A-7 12.5"]

        # the approval is used up: the same call asks a person again and does not run
        repeat = await c.call_tool("refund", args)
        assert repeat.structured_content["status"] == "pending_approval"
        assert repeat.structured_content["approval_id"] != approval_id
        assert _lines(runlog) == ["refund A-7 12.5"]

        # a different amount is a different call: the approval never rides along
        other = await c.call_tool("refund", {**args, "amount": 13})
        assert other.structured_content["status"] == "pending_approval"

    store = open_approval_store(str(tmp_path / "approvals.db"))
    req = store.get(approval_id)
    assert req is not None and req.status == "done" and req.decided_by == "lead"
    assert req.arguments["card_number"] != args["card_number"]  # masked for the person


async def test_denied_from_another_process_never_runs(tmp_path: Path) -> None:
    args = {"order_id": "B-1", "amount": 1}
    async with Client(_serve(tmp_path, "--user", "bo")) as c:
        first = await c.call_tool("refund", args)
        approval_id = first.structured_content["approval_id"]
        _approve_elsewhere(tmp_path, approval_id, verb="deny")
        denied = await c.call_tool("refund", args)
        assert denied.is_error and "denied" in _text(denied).lower()
    assert _lines(tmp_path / "run.log") == []


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("approve", [True, False])
async def test_approval_by_elicitation(
    tmp_path: Path, mode: str, approve: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    if mode == "auto" and approve:  # over stdio, as a desktop client would
        target: object = _serve(tmp_path, "--user", "ana")
    else:  # in process (same SDK paths for both protocol eras), to keep the suite quick
        from callgate.mcp import GateMcpServer, Identity
        from tests.mcp_fixtures import tools as fx

        for name, value in _env(tmp_path).items():
            if name.startswith("CG_"):
                monkeypatch.setenv(name, value)
        target = GateMcpServer(fx.gate(), identity=Identity(user_id="ana")).server

    async def elicit(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        asked.append(params.message)
        return types.ElicitResult(
            action="accept", content={"approve": approve, "comment": "checked by phone"}
        )

    args = {"order_id": "C-3", "amount": 40}
    async with Client(target, elicitation_callback=elicit, mode=mode) as c:
        res = await c.call_tool("refund", args)
    assert len(asked) == 1
    assert "`refund`" in asked[0] and "C-3" in asked[0] and "refunds" in asked[0]
    assert "4111111111111111" not in asked[0]  # the sensitive default is masked
    runs = _lines(tmp_path / "run.log")
    if approve:
        assert not res.is_error and "refunded 40" in _text(res) and runs == ["refund C-3 40.0"]
    else:
        assert res.is_error and "checked by phone" in _text(res) and runs == []
    reqs = open_approval_store(str(tmp_path / "approvals.db")).list()
    assert len(reqs) == 1
    assert reqs[0].status == ("done" if approve else "denied")
    assert reqs[0].decided_by == "ana (MCP elicitation)"


async def test_serve_streamable_http(tmp_path: Path) -> None:
    port = _free_port()
    proc = _spawn(
        [
            PY,
            "-m",
            "callgate.cli",
            "mcp",
            "serve",
            "tests.mcp_fixtures.tools:gate",
            "--transport",
            "http",
            "--port",
            str(port),
            "--user",
            "ana",
        ],
        _env(tmp_path),
    )
    try:
        _wait_port(port, proc)
        async with Client(f"http://127.0.0.1:{port}/mcp") as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert names == {"lookup_order", "refund", "slow_report"}
            res = await c.call_tool("refund", {"order_id": "H-1", "amount": 2})
            assert res.structured_content["status"] == "pending_approval"
            _approve_elsewhere(tmp_path, res.structured_content["approval_id"])
            done = await c.call_tool("refund", {"order_id": "H-1", "amount": 2})
            assert "refunded 2" in _text(done)
    finally:
        _stop(proc)
    assert _lines(tmp_path / "run.log") == ["refund H-1 2.0"]


# --- proxy -----------------------------------------------------------------------------------


def _proxy(tmp_path: Path) -> StdioServerParameters:
    policy = tmp_path / "policy.yaml"
    policy.write_text(PROXY_POLICY)
    return _stdio(
        tmp_path,
        "mcp",
        "proxy",
        "--upstream",
        UPSTREAM,
        "--policy",
        str(policy),
        "--approvals",
        str(tmp_path / "approvals.db"),
        "--audit",
        str(tmp_path / "audit.db"),
        "--user",
        "dev",
    )


async def test_proxy_governs_an_sdk_server(tmp_path: Path) -> None:
    upstream_log = tmp_path / "upstream.log"
    async with Client(_proxy(tmp_path)) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert set(tools) == {"add", "delete_file", "crash"}
        assert tools["add"].annotations.read_only_hint is True

        assert "5" in _text(await c.call_tool("add", {"a": 2, "b": 3}))
        # validated against the upstream's own schema before anything is forwarded
        bad = await c.call_tool("add", {"a": "two", "b": 3})
        assert bad.is_error and "a" in _text(bad) and "integer" in _text(bad)

        pending = await c.call_tool("delete_file", {"path": "/etc/important"})
        assert pending.structured_content["status"] == "pending_approval"
        assert _lines(upstream_log) == []
        _approve_elsewhere(tmp_path, pending.structured_content["approval_id"])
        done = await c.call_tool("delete_file", {"path": "/etc/important"})
        assert "deleted /etc/important" in _text(done)
        assert _lines(upstream_log) == ["/etc/important"]

    audit = AuditLog.open(str(tmp_path / "audit.db"))
    report = audit.verify()
    assert report.ok, report.summary()
    calls = [e for e in audit.entries(tool="delete_file")]
    assert {e.decision for e in calls} >= {"approve"}
    assert all(e.user_id == "dev" for e in calls)


async def test_proxy_survives_an_upstream_that_dies_mid_call(tmp_path: Path) -> None:
    async with Client(_proxy(tmp_path)) as c:
        t0 = time.monotonic()
        res = await c.call_tool("crash", {"reason": "test"})
        assert res.is_error
        assert "connection broke" in _text(res) or "failed" in _text(res)
        assert time.monotonic() - t0 < 20  # reported, not hung until a timeout
        # the proxy itself is still up and says what it can
        assert {t.name for t in (await c.list_tools()).tools} == {"add", "delete_file", "crash"}
        after = await c.call_tool("add", {"a": 1, "b": 1})
        assert after.is_error  # the upstream is gone; the caller is told, nothing hangs
    audit = AuditLog.open(str(tmp_path / "audit.db"))
    assert audit.verify().ok
    assert any(e.tool == "crash" for e in audit.entries())


# --- import ----------------------------------------------------------------------------------


def test_annotations_from_mcp_default_to_caution() -> None:
    none = annotations_from_mcp(None)
    assert none.destructive and none.open_world and not none.read_only
    ro = annotations_from_mcp(types.ToolAnnotations(read_only_hint=True, destructive_hint=True))
    assert ro.read_only and not ro.destructive  # destructive means nothing for read-only
    idem = annotations_from_mcp(types.ToolAnnotations(idempotent_hint=True, destructive_hint=False))
    assert idem.idempotent and not idem.destructive and idem.retry_allowed


async def test_import_tools_over_stdio_into_a_gate(tmp_path: Path) -> None:
    env = _env(tmp_path)
    params = StdioServerParameters(
        command=PY, args=["-m", "tests.mcp_fixtures.upstream"], env=env, cwd=str(ROOT)
    )
    async with import_tools(params, prefix="fs.") as imported:
        names = sorted(t.name for t in imported.tools)
        assert names == ["fs.add", "fs.crash", "fs.delete_file"]
        gate = Gate(imported.tools, policy=Policy([Rule("sums", "allow", tools="fs.add")]))
        ctx = RunContext(user_id="t")
        assert [t.name for t in gate.list_tools(ctx)] == ["fs.add"]
        ok = await gate.execute(ToolCall("c1", "fs.add", '{"a": 40, "b": 2}'), ctx)
        assert not ok.is_error and "42" in ok.content
        refused = await gate.execute(ToolCall("c2", "fs.delete_file", '{"path": "x"}'), ctx)
        assert refused.is_error
    assert _lines(tmp_path / "upstream.log") == []


async def test_import_tools_over_streamable_http(tmp_path: Path) -> None:
    port = _free_port()
    proc = _spawn([PY, "-m", "tests.mcp_fixtures.upstream", "--http", str(port)], _env(tmp_path))
    try:
        _wait_port(port, proc)
        async with import_tools(f"http://127.0.0.1:{port}/mcp") as imported:
            gate = Gate(imported.tools, policy=Policy([Rule("all", "allow", tools="*")]))
            res = await gate.execute(
                ToolCall("c1", "delete_file", {"path": "/tmp/x"}), RunContext()
            )
            assert not res.is_error and "deleted /tmp/x" in res.content
    finally:
        _stop(proc)
    assert _lines(tmp_path / "upstream.log") == ["/tmp/x"]


async def test_readme_proxy_over_streamable_http(tmp_path: Path) -> None:
    """The README's proxy command with the example policy, served over streamable HTTP."""
    port = _free_port()
    proc = _spawn(
        [
            PY,
            "-m",
            "callgate.cli",
            "mcp",
            "proxy",
            "--upstream",
            UPSTREAM,
            "--policy",
            "examples/serving/mcp_proxy_policy.yaml",
            "--approvals",
            str(tmp_path / "approvals.db"),
            "--audit",
            str(tmp_path / "audit.db"),
            "--user",
            "ana",
            "--transport",
            "http",
            "--port",
            str(port),
        ],
        _env(tmp_path),
    )
    try:
        _wait_port(port, proc)
        async with Client(f"http://127.0.0.1:{port}/mcp") as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert names == {"add", "delete_file"}  # `crash` is in no rule: never shown
            assert "7" in _text(await c.call_tool("add", {"a": 3, "b": 4}))
            hidden = await c.call_tool("crash", {"reason": "x"})
            assert hidden.is_error and "no tool named 'crash'" in _text(hidden)
            res = await c.call_tool("delete_file", {"path": "/srv/a"})
            assert res.structured_content["status"] == "pending_approval"
    finally:
        _stop(proc)
    assert _lines(tmp_path / "upstream.log") == []


async def test_a_forged_elicitation_answer_approves_nothing(tmp_path: Path) -> None:
    """The approval id in an answer comes back from the client: an answer naming another
    caller's (or another call's) approval must not decide it."""
    from callgate.mcp import GateMcpServer, Identity
    from tests.mcp_fixtures import tools as fx

    approvals = Approvals(MemoryApprovalStore())
    gate = Gate(fx.toolset, policy=fx.POLICY, approver=approvals)
    victim = GateMcpServer(gate, identity=Identity(user_id="bo"))
    async with Client(victim.server) as bo:  # no elicitation: bo's call waits for a person
        pending = await bo.call_tool("refund", {"order_id": "V-1", "amount": 500})
        target = pending.structured_content["approval_id"]

    attacker = GateMcpServer(gate, identity=Identity(user_id="eve"))

    async def say_yes(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"approve": True})

    yes = {"callgate_approval": types.ElicitResult(action="accept", content={"approve": True})}
    async with Client(attacker.server, elicitation_callback=say_yes) as eve:
        for args in ({"order_id": "V-1", "amount": 500}, {"order_id": "E-1", "amount": 1}):
            res = await eve.session.call_tool(
                "refund", args, input_responses=yes, request_state=target, allow_input_required=True
            )
            assert isinstance(res, types.InputRequiredResult)  # eve is asked about her own call
            assert res.request_state != target
    assert approvals.get(target).status == "pending"


async def test_per_tenant_tool_lists(tmp_path: Path) -> None:
    from callgate import Toolset, tool
    from callgate.mcp import GateMcpServer, Identity

    @tool(read_only=True)
    def acme_report() -> str:
        """Acme's own report."""
        return "acme numbers"

    @tool(read_only=True)
    def ping() -> str:
        """Everyone's ping."""
        return "pong"

    ts = Toolset([ping])
    ts.register(acme_report, tenants=["acme"])
    gate = Gate(ts, policy=Policy([Rule("reads", "allow", tools="*")]))
    for tenant, expected in (("acme", {"ping", "acme_report"}), ("globex", {"ping"})):
        server = GateMcpServer(gate, identity=Identity(user_id="u", tenant=tenant))
        async with Client(server.server) as c:
            assert {t.name for t in (await c.list_tools()).tools} == expected
            res = await c.call_tool("acme_report", {})
            assert res.is_error == (tenant != "acme")
