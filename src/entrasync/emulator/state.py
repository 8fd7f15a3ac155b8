"""Everything one running emulator holds: the tenant, the app registration, keys, faults, counters."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from entrasync.emulator.faults import FaultRegistry
from entrasync.emulator.store import Tenant
from entrasync.emulator.tenant import new_uuid

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
DEFAULT_APP_ROLES = ("User.Read.All", "GroupMember.Read.All")


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


@dataclass
class EmulatorState:
    tenant: Tenant
    client_id: str
    client_secret: str
    base_url: str = ""
    app_roles: list[str] = field(default_factory=lambda: list(DEFAULT_APP_ROLES))
    redirect_uris: list[str] = field(default_factory=list)
    delta_expiry_mode: str = "400"  # what an expired delta token produces: "400" or "410"
    delta_page_size: int = 200
    token_lifetime: int = 3600
    faults: FaultRegistry = field(default_factory=FaultRegistry)
    counters: Counter[str] = field(default_factory=Counter)
    auth_codes: dict[str, AuthCode] = field(default_factory=dict)
    consented: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Certificates uploaded to the app registration: thumbprint (x5t or x5t#S256) -> public key.
    app_certificate_keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    _key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    _kid: str = ""
    _valid_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def create(cls, tenant: Tenant, seed: int) -> EmulatorState:
        rng = random.Random(f"app-{seed}")
        secret = base64.urlsafe_b64encode(rng.randbytes(30)).decode().rstrip("=")
        state = cls(tenant=tenant, client_id=new_uuid(rng), client_secret=secret)
        pub = state._key.public_key().public_numbers()
        state._kid = hashlib.sha256(str(pub.n).encode()).hexdigest()[:27]
        return state

    # -- URLs ----------------------------------------------------------------------------------
    @property
    def graph_root(self) -> str:
        return f"{self.base_url}/v1.0"

    def issuer(self, tenant_id: str | None = None) -> str:
        return f"{self.base_url}/{tenant_id or self.tenant.tenant_id}/v2.0"

    # -- keys and tokens -----------------------------------------------------------------------
    @property
    def kid(self) -> str:
        return self._kid

    def jwks(self) -> dict[str, Any]:
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
            "issuer": self.issuer(),
        }
        return {"keys": [key]}

    def sign(self, claims: dict[str, Any], lifetime: int | None = None) -> str:
        now = int(time.time())
        body = {"iat": now, "nbf": now, "exp": now + (lifetime or self.token_lifetime), **claims}
        return jwt.encode(body, self._key, algorithm="RS256", headers={"kid": self._kid, "typ": "JWT"})

    def app_token(self) -> str:
        return self.sign(
            {
                "aud": GRAPH_AUDIENCE,
                "iss": self.issuer(),
                "tid": self.tenant.tenant_id,
                "appid": self.client_id,
                "azp": self.client_id,
                "oid": new_uuid(random.Random(self.client_id)),
                "sub": self.client_id,
                "idtyp": "app",
                "roles": list(self.app_roles),
                "ver": "2.0",
            }
        )

    def verify_graph_token(self, token: str) -> dict[str, Any]:
        """Validate signature, audience, issuer tenant and lifetime; raise jwt errors on failure."""
        cached = self._valid_tokens.get(token)
        if cached is not None and cached["exp"] > time.time():
            return cached
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key.public_key(),
            algorithms=["RS256"],
            audience=[GRAPH_AUDIENCE, GRAPH_AUDIENCE + "/", GRAPH_APP_ID],
            options={"require": ["exp", "iat", "aud", "tid"]},
        )
        if claims.get("tid") != self.tenant.tenant_id:
            raise jwt.InvalidTokenError("Invalid tenant")
        if len(self._valid_tokens) > 10_000:
            self._valid_tokens.clear()
        self._valid_tokens[token] = claims
        return claims

    def forget_tokens(self) -> None:
        """Permission changes apply to tokens issued afterwards, as in Entra; cached checks reset too."""
        self._valid_tokens.clear()
