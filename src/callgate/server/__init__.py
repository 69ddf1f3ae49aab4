"""The HTTP gateway and web console (``callgate serve``): the gate behind API keys or JWTs, the
approvals inbox, audit queries, and MCP at ``/mcp``. Needs the ``server`` extra."""

from callgate.server.app import create_app
from callgate.server.auth import ApiKeys, Authenticator, JwtVerifier, Principal, SessionSigner

__all__ = ["ApiKeys", "Authenticator", "JwtVerifier", "Principal", "SessionSigner", "create_app"]
