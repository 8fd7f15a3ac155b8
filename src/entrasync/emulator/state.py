"""Everything one running emulator holds: the tenants, the multi-tenant app registration, the signing
key, app-wide faults and throttle, and pending authorization codes.

Tokens follow https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference: one
signing key for every tenant (Entra's keys are not per tenant), ``iss`` = ``{login}/{tid}/v2.0`` and
``tid`` = the tenant the token was requested for, which is the tenant Graph then serves.
"""

from __future__ import annotations

import base64
import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from entrasync.emulator.faults import FaultRegistry
from entrasync.emulator.store import Tenant
from entrasync.emulator.tenant_profiles import new_uuid
from entrasync.emulator.tenants import DEFAULT_APP_ROLES, TenantRegistry, TenantState
from entrasync.emulator.throttle import Throttle

__all__ = ["DEFAULT_APP_ROLES", "GRAPH_APP_ID", "GRAPH_AUDIENCE", "AuthCode", "EmulatorState"]

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float
    tenant_id: str = ""


@dataclass
class EmulatorState:
    tenants: TenantRegistry
    client_id: str
    client_secret: str
    base_url: str = ""
    redirect_uris: list[str] = field(default_factory=list)
    token_lifetime: int = 3600
    app_faults: FaultRegistry = field(default_factory=FaultRegistry)  # hit every tenant
    app_throttle: Throttle = field(default_factory=Throttle)  # one budget for the app, all tenants
    auth_codes: dict[str, AuthCode] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Certificates uploaded to the app registration: thumbprint (x5t or x5t#S256) -> public key.
    app_certificate_keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    _key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    _kid: str = ""
    _valid_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    _token_tids: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def create(cls, tenants: TenantRegistry, seed: int) -> EmulatorState:
        rng = random.Random(f"app-{seed}")
        secret = base64.urlsafe_b64encode(rng.randbytes(30)).decode().rstrip("=")
        state = cls(tenants=tenants, client_id=new_uuid(rng), client_secret=secret)
        pub = state._key.public_key().public_numbers()
        state._kid = hashlib.sha256(str(pub.n).encode()).hexdigest()[:27]
        return state

    # -- tenants -------------------------------------------------------------------------------
    @property
    def default(self) -> TenantState:
        return self.tenants.default

    @property
    def tenant(self) -> Tenant:
        """The default tenant's directory (the single tenant of a one-tenant emulator)."""
        return self.tenants.default.store

    def tenant_of_token(self, token: str) -> TenantState | None:
        """The tenant named by a bearer token's ``tid``, read without verifying (for faults and counters)."""
        tid = self._token_tids.get(token, "")
        if tid == "":
            tid = None
            try:
                payload = token.split(".")[1]
                claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                tid = str(claims.get("tid")) if isinstance(claims, dict) and claims.get("tid") else None
            except (IndexError, ValueError, orjson.JSONDecodeError):
                tid = None
            if len(self._token_tids) > 10_000:
                self._token_tids.clear()
            self._token_tids[token] = tid
        return self.tenants.get(tid) if tid else None

    # -- URLs ----------------------------------------------------------------------------------
    @property
    def graph_root(self) -> str:
        return f"{self.base_url}/v1.0"

    def issuer(self, tenant_id: str | None = None) -> str:
        return f"{self.base_url}/{tenant_id or self.default.tenant_id}/v2.0"

    # -- keys and tokens -----------------------------------------------------------------------
    @property
    def kid(self) -> str:
        return self._kid

    def jwks(self, tenant_id: str | None = None) -> dict[str, Any]:
        pub = self._key.public_key().public_numbers()

        def b64(n: int) -> str:
            return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode().rstrip("=")

        key = {
            "kty": "RSA",
            "use": "sig",
            "kid": self._kid,
            "x5t": self._kid,
            "n": b64(pub.n),
            "e": b64(pub.e),
            "alg": "RS256",
            "issuer": self.issuer(tenant_id),
        }
        return {"keys": [key]}

    def sign(self, claims: dict[str, Any], lifetime: int | None = None) -> str:
        now = int(time.time())
        body = {"iat": now, "nbf": now, "exp": now + (lifetime or self.token_lifetime), **claims}
        return jwt.encode(body, self._key, algorithm="RS256", headers={"kid": self._kid, "typ": "JWT"})

    def app_token(self, ts: TenantState | None = None) -> str:
        """A client-credentials token for Graph in tenant ``ts`` (the default tenant when None)."""
        ts = ts or self.default
        return self.sign(
            {
                "aud": GRAPH_AUDIENCE,
                "iss": self.issuer(ts.tenant_id),
                "tid": ts.tenant_id,
                "appid": self.client_id,
                "azp": self.client_id,
                "oid": self._service_principal_id(ts),
                "sub": self.client_id,
                "idtyp": "app",
                "roles": list(ts.app_roles),
                "ver": "2.0",
            }
        )

    def _service_principal_id(self, ts: TenantState) -> str:
        """The object id of the app's service principal in ``ts`` (one per consenting tenant)."""
        seed = self.client_id if ts is self.default else f"{self.client_id}/{ts.tenant_id}"
        return new_uuid(random.Random(seed))

    def verify_graph_token(self, token: str) -> tuple[dict[str, Any], TenantState]:
        """Validate signature, audience, tenant and lifetime; raise jwt errors on failure."""
        cached = self._valid_tokens.get(token)
        if cached is None or cached["exp"] <= time.time():
            cached = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_AUDIENCE, GRAPH_AUDIENCE + "/", GRAPH_APP_ID],
                options={"require": ["exp", "iat", "aud", "tid"]},
            )
            if len(self._valid_tokens) > 10_000:
                self._valid_tokens.clear()
            self._valid_tokens[token] = cached
        ts = self.tenants.get(str(cached.get("tid")))
        if ts is None:
            raise jwt.InvalidTokenError("Invalid tenant")
        return cached, ts

    def forget_tokens(self) -> None:
        """Permission changes apply to tokens issued afterwards, as in Entra; cached checks reset too."""
        self._valid_tokens.clear()
