"""Who is calling the gateway: API keys stored hashed, bearer JWTs checked against a key set, and
the console's signed session cookie.

- API keys look like ``cg_<id>_<secret>``. The key file keeps, per key, only a salted scrypt hash
  of the secret plus the identity the key stands for (user, roles, tenant); the id selects the
  entry so one hash is computed per request, compared in constant time.
- JWTs are verified against a JWKS file (signature, expiry, and issuer/audience when configured);
  ``sub`` is the user, the roles and tenant come from configurable claims.
- The console's cookie is an HMAC-signed, expiring copy of the identity the login key proved; the
  signing secret is shared by every gateway process that serves the same users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_KEY_PREFIX = "cg_"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `method` says how they proved it (key, jwt, session)."""

    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    tenant: str | None = None
    method: str = "key"

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user_id, "roles": sorted(self.roles), "tenant": self.tenant}


class AuthError(Exception):
    """Credentials were presented but are not valid (the message is safe to show)."""


# --- API keys --------------------------------------------------------------------------------


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=len(expected)
    )
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True, slots=True)
class KeyEntry:
    key_id: str
    secret_hash: str
    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    tenant: str | None = None


class ApiKeys:
    """API keys from a JSON file: ``{"keys": [{"id", "hash", "user", "roles", "tenant"}]}``."""

    #: how long a verified key is remembered (scrypt is slow on purpose; a busy client should
    #: not pay it on every request). Only successes are cached, keyed by the key's SHA-256.
    cache_ttl_s: float = 60.0

    def __init__(self, entries: Sequence[KeyEntry] = ()) -> None:
        self._by_id = {e.key_id: e for e in entries}
        self._verified: dict[str, tuple[float, Principal]] = {}

    @classmethod
    def load(cls, path: str | Path) -> ApiKeys:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = [
            KeyEntry(
                key_id=str(k["id"]),
                secret_hash=str(k["hash"]),
                user_id=str(k["user"]),
                roles=frozenset(str(r) for r in k.get("roles", [])),
                tenant=k.get("tenant"),
            )
            for k in data.get("keys", [])
        ]
        return cls(entries)

    @staticmethod
    def new_key(
        user_id: str, roles: Sequence[str] = (), tenant: str | None = None
    ) -> tuple[str, KeyEntry]:
        """A fresh key (shown once) and the entry to store (which cannot give the key back)."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24).replace("_", "-")
        entry = KeyEntry(key_id, hash_secret(secret), user_id, frozenset(roles), tenant)
        return f"{_KEY_PREFIX}{key_id}_{secret}", entry

    @staticmethod
    def append(path: str | Path, entry: KeyEntry) -> None:
        p = Path(path)
        data = json.loads(p.read_text(encoding="utf-8")) if p.exists() else {"keys": []}
        data["keys"].append(
            {
                "id": entry.key_id,
                "hash": entry.secret_hash,
                "user": entry.user_id,
                "roles": sorted(entry.roles),
                "tenant": entry.tenant,
            }
        )
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(p)

    def add(self, entry: KeyEntry) -> None:
        self._by_id[entry.key_id] = entry

    def revoke(self, key_id: str) -> None:
        self._by_id.pop(key_id, None)
        self._verified.clear()

    def verify(self, key: str) -> Principal | None:
        if not key.startswith(_KEY_PREFIX):
            return None
        fingerprint = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        cached = self._verified.get(fingerprint)
        if cached is not None and cached[0] > now:
            return cached[1]
        key_id, sep, secret = key[len(_KEY_PREFIX) :].partition("_")
        entry = self._by_id.get(key_id)
        if not sep or entry is None or not check_secret(secret, entry.secret_hash):
            return None
        who = Principal(entry.user_id, entry.roles, entry.tenant, "key")
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[fingerprint] = (now + self.cache_ttl_s, who)
        return who


# --- JWT -------------------------------------------------------------------------------------


class JwtVerifier:
    """Bearer JWTs signed by a key in a JWKS file (RS256/ES256/EdDSA; never ``none``)."""

    def __init__(
        self,
        jwks_path: str | Path,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        roles_claim: str = "roles",
        tenant_claim: str = "tenant",
        algorithms: Sequence[str] = ("RS256", "ES256", "EdDSA"),
    ) -> None:
        import jwt

        self._jwks = jwt.PyJWKSet.from_json(Path(jwks_path).read_text(encoding="utf-8"))
        self.issuer = issuer
        self.audience = audience
        self.roles_claim = roles_claim
        self.tenant_claim = tenant_claim
        self.algorithms = list(algorithms)

    def verify(self, token: str) -> Principal:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            key = next((k for k in self._jwks.keys if kid is None or k.key_id == kid), None)
            if key is None:
                raise AuthError("the token's signing key is not in the configured key set")
            claims: Mapping[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        roles = claims.get(self.roles_claim) or []
        if isinstance(roles, str):
            roles = roles.split()
        tenant = claims.get(self.tenant_claim)
        return Principal(
            str(claims["sub"]),
            frozenset(str(r) for r in roles),
            str(tenant) if tenant is not None else None,
            "jwt",
        )


# --- console sessions ------------------------------------------------------------------------


class SessionSigner:
    """Signed, expiring session cookies holding a principal."""

    def __init__(self, secret: bytes | str | None = None, ttl_s: float = 8 * 3600) -> None:
        if secret is None:
            secret = secrets.token_bytes(32)
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.ttl_s = ttl_s

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()

    def sign(self, who: Principal) -> str:
        body = {**who.to_json(), "exp": time.time() + self.ttl_s}
        payload = base64.urlsafe_b64encode(json.dumps(body, sort_keys=True).encode())
        return payload.decode() + "." + self._mac(payload)

    def verify(self, cookie: str) -> Principal | None:
        payload_text, sep, mac = cookie.partition(".")
        payload = payload_text.encode()
        if not sep or not hmac.compare_digest(self._mac(payload), mac):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(payload))
        except (ValueError, json.JSONDecodeError):
            return None
        if not isinstance(body, dict) or float(body.get("exp", 0)) < time.time():
            return None
        return Principal(
            str(body["user"]), frozenset(body.get("roles", [])), body.get("tenant"), "session"
        )


@dataclass(slots=True)
class Authenticator:
    """Every way in, tried in order: bearer API key, bearer JWT, console session cookie."""

    keys: ApiKeys = field(default_factory=ApiKeys)
    jwt: JwtVerifier | None = None
    sessions: SessionSigner = field(default_factory=SessionSigner)

    def bearer(self, token: str) -> Principal:
        if token.startswith(_KEY_PREFIX):
            found = self.keys.verify(token)
            if found is None:
                raise AuthError("unknown or revoked API key")
            return found
        if self.jwt is None:
            raise AuthError("bearer tokens other than API keys are not accepted here")
        return self.jwt.verify(token)

    def authenticate(self, authorization: str | None, cookie: str | None) -> Principal | None:
        """The caller, None when no credentials were presented; raises `AuthError` for bad
        ones (a bad credential never falls back to another)."""
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("use 'Authorization: Bearer <API key or JWT>'")
            return self.bearer(token.strip())
        if cookie:
            return self.sessions.verify(cookie)
        return None
