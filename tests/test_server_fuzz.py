"""Fuzz the gateway's API against its own OpenAPI document with schemathesis: every generated
request (bounded number of examples, so it stays quick) must get a documented status code, a
response matching the documented schema, and never a server error."""

from __future__ import annotations

import os
import tempfile

import schemathesis
from hypothesis import HealthCheck, settings

from callgate import Approvals, AuditLog, Gate
from callgate.approvals import open_approval_store
from callgate.server import ApiKeys, Authenticator, create_app
from tests.mcp_fixtures import tools as fx

_DIR = tempfile.mkdtemp(prefix="cg-fuzz-")
_KEYS = ApiKeys()
_KEY, _ENTRY = ApiKeys.new_key("fuzzer", ["approver", "auditor"], "acme")
_KEYS.add(_ENTRY)
_GATE = Gate(
    [fx.lookup_order, fx.refund, fx.list_users],  # not the slow tool: fuzzing must stay quick
    policy=fx.POLICY,
    approver=Approvals(open_approval_store(os.path.join(_DIR, "approvals.db"))),
    observers=[AuditLog.open(os.path.join(_DIR, "audit.db"))],
)
APP = create_app(_GATE, Authenticator(keys=_KEYS), mcp=False, console=False)
AUTH = {"Authorization": f"Bearer {_KEY}"}
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, headers=AUTH)
# requests the document allows (invalid ones are covered, with exact expectations, in
# test_server.py: schemathesis' negative mode also flags ignored unknown query parameters)
schema.config.generation.update(modes=["positive"], database="none")


@schema.parametrize()
@settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH)
