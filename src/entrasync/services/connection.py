"""Connecting and disconnecting Microsoft Entra ID (§2), and building the Graph client for an org."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from entrasync.adapters.graph.client import GraphClient, GraphConfig
from entrasync.adapters.graph.credential import CredentialError, is_certificate, parse_certificate
from entrasync.adapters.graph.errors import GraphError
from entrasync.adapters.graph.reader import check_groups, count_users, count_users_in_groups, probe_select
from entrasync.errors import ConflictError, NotConnectedError, ValidationError
from entrasync.services.audit import AuditEntry
from entrasync.services.context import Actor, AppContext
from entrasync.services.sync_settings import SyncSettings

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DOMAIN_RE = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
CONNECTED_MESSAGE = "Microsoft Entra ID is connected to entrasync."
TENANT_TAKEN = "This Microsoft Entra tenant is already connected to another organisation in entrasync."
PERMISSIONS = (
    ("User.Read.All", "Read every user's profile and manager, to create and update people."),
    ("GroupMember.Read.All", "Read group memberships, for the Group filter."),
)


@dataclass(frozen=True)
class Credentials:
    tenant_id: str
    client_id: str
    client_credential: str  # a client secret, or a certificate PEM with its private key


@dataclass(frozen=True)
class ConnectionStatus:
    connected: bool
    tenant_id: str | None = None
    client_id: str | None = None
    connected_at: Any = None
    connected_by: str | None = None
    last_error: str | None = None

    @property
    def message(self) -> str:
        if self.last_error:
            return self.last_error
        return CONNECTED_MESSAGE if self.connected else "Not connected"

    def public(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "status": self.message,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "connected_at": self.connected_at.isoformat() if self.connected_at else None,
            "connected_by": self.connected_by,
            "last_error": self.last_error,
        }


def status(ctx: AppContext, org_id: int) -> ConnectionStatus:
    with ctx.read() as uow:
        m = uow.connections.get(org_id)
    if m is None:
        return ConnectionStatus(connected=False)
    return ConnectionStatus(True, m["tenant_id"], m["client_id"], m["connected_at"], m["connected_by"], m["last_error"])


def graph_config(ctx: AppContext, creds: Credentials) -> GraphConfig:
    c = ctx.config
    return GraphConfig(
        graph_url=c.graph_url,
        login_url=c.login_url,
        tenant_id=creds.tenant_id,
        client_id=creds.client_id,
        client_credential=creds.client_credential,
        ca_bundle=str(c.ca_bundle) if c.ca_bundle else None,
        timeout=c.graph_timeout,
        max_retry_seconds=c.graph_max_retry_seconds,
    )


NOT_CONNECTED = "Microsoft Entra ID is not connected. Connect it first (Integrations, or `entrasync connect`)."


def credentials(ctx: AppContext, org_id: int) -> Credentials:
    with ctx.read() as uow:
        return credentials_of(ctx, uow.connections.get(org_id))


def credentials_of(ctx: AppContext, m: Mapping[str, Any] | None) -> Credentials:
    """The credentials of a connection row the caller read (a refresh reads it with its budget's size and
    its stored token: one transaction); NotConnectedError for no row."""
    if m is None:
        raise NotConnectedError(NOT_CONNECTED)
    secret = ctx.box.open(m["secret_enc"]) if m["secret_enc"] else (ctx.config.client_credential or "")
    return Credentials(m["tenant_id"], m["client_id"], secret)


def graph_client(ctx: AppContext, org_id: int) -> GraphClient:
    return GraphClient(graph_config(ctx, credentials(ctx, org_id)))


def connected_client(ctx: AppContext, org_id: int) -> GraphClient:
    """The organisation's Graph client, or NotConnectedError (explain, dry run, Preview read on demand)."""
    if not status(ctx, org_id).connected:
        raise NotConnectedError(NOT_CONNECTED)
    return graph_client(ctx, org_id)


class ClientProbe:
    """The settings dialog's checks, asked of Graph through the org's client."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    def count_users(self, graph_filter: str) -> int:
        return count_users(self.client, graph_filter)

    def missing_groups(self, group_ids: list[str]) -> list[str]:
        return check_groups(self.client, group_ids)

    def count_in_groups(self, graph_filter: str | None, group_ids: list[str]) -> int:
        return count_users_in_groups(self.client, graph_filter, group_ids)

    def check_select(self, properties: list[str]) -> None:
        probe_select(self.client, properties)

    def close(self) -> None:
        self.client.close()


def probe_for(ctx: AppContext, org_id: int) -> ClientProbe | None:
    if not status(ctx, org_id).connected:
        return None
    return ClientProbe(graph_client(ctx, org_id))


def validate_credentials(
    tenant_id: str, client_id: str, client_secret: str | None, client_certificate: str | None = None
) -> Credentials:
    """Check what an admin typed; the credential is a client secret or a certificate PEM, not both.

    ``Credentials.client_credential`` then holds whichever was given (see adapters/graph/credential.py).
    """
    errors: dict[str, str] = {}
    tenant_id, client_id = (tenant_id or "").strip(), (client_id or "").strip()
    if not (GUID_RE.match(tenant_id) or DOMAIN_RE.match(tenant_id)):
        errors["tenant_id"] = "Tenant id is a GUID (or a domain such as contoso.onmicrosoft.com)."
    if not GUID_RE.match(client_id):
        errors["client_id"] = "Client id is the app registration's Application (client) ID, a GUID."
    credential = ""
    if client_secret and client_certificate:
        errors["client_secret"] = "Give a client secret or a certificate, not both."
    elif client_certificate:
        try:
            parse_certificate(client_certificate)
            credential = client_certificate
        except CredentialError as exc:
            errors["client_certificate"] = str(exc)
    elif client_secret:
        if is_certificate(client_secret):
            errors["client_secret"] = "That is a certificate, not a client secret: give it as the certificate."
        credential = client_secret
    else:
        errors["client_secret"] = (
            "Give the client secret (ENTRASYNC_CLIENT_SECRET or the prompt) or a certificate (--certificate)."
        )
    if errors:
        raise ValidationError(errors)
    return Credentials(tenant_id.lower(), client_id.lower(), credential)


def _verify(ctx: AppContext, creds: Credentials) -> GraphClient:
    """A client whose credential Microsoft accepted (a token and one small read); the caller closes it."""
    client = GraphClient(graph_config(ctx, creds))
    try:
        client.get("/users", params={"$top": "1", "$select": "id"})
    except GraphError as exc:
        client.close()
        raise ValidationError({"connection": f"Could not connect to Microsoft Entra ID: {exc}"}) from None
    except BaseException:
        client.close()
        raise
    return client


def test(ctx: AppContext, org_id: int, creds: Credentials | None = None) -> dict[str, Any]:
    """Try a credential (given, else the stored one) without storing anything (§2 "test of the
    connection"): a token, the permissions the sync needs, and how many users the tenant has."""
    creds = creds or credentials(ctx, org_id)
    client = _verify(ctx, creds)
    try:
        users = count_users(client, None)
        permissions = {"User.Read.All": True, "GroupMember.Read.All": True}
        try:
            client.get("/groups", params={"$top": "1", "$select": "id"})
        except GraphError as exc:
            if exc.status != 403:
                raise ValidationError({"connection": f"Reading groups failed: {exc}"}) from None
            permissions["GroupMember.Read.All"] = False
    except GraphError as exc:
        raise ValidationError({"connection": f"Could not connect to Microsoft Entra ID: {exc}"}) from None
    finally:
        client.close()
    missing = [p for p, ok in permissions.items() if not ok]
    return {
        "ok": not missing,
        "tenant_id": creds.tenant_id,
        "client_id": creds.client_id,
        "users": users,
        "permissions": permissions,
        "message": (
            f"The connection works: {users} users in the tenant."
            if not missing
            else f"The credential works, but the app lacks {', '.join(missing)}: grant it with admin consent "
            "(the Group filter needs it)."
        ),
    }


def synced_tenant(ctx: AppContext, org_id: int) -> str | None:
    """The tenant people were synced from, when there are synced people (connecting another one then
    needs a confirmation)."""
    with ctx.read() as uow:
        org = uow.orgs.get(org_id) or {}
        prior = uow.connections.get(org_id)
        tenant = (prior or {}).get("tenant_id") or org.get("last_tenant_id")
        return str(tenant) if tenant and uow.people.any_synced(org_id) else None


NEW_TENANT = (
    "This organisation synced people from Microsoft Entra tenant {old}; connecting tenant {new} instead needs "
    "an explicit confirmation (--new-tenant in the CLI, the checkbox in the UI). Its first refresh is then "
    "planned like any other, and the safety guard holds it if it would archive many people."
)


def connect(
    ctx: AppContext,
    org_id: int,
    actor: Actor,
    creds: Credentials,
    *,
    verify: bool = True,
    connected_by: str | None = None,
    new_tenant: bool = False,
) -> ConnectionStatus:
    """Store the connection after proving it works: a token and one small Graph read.

    A failure leaves the org as it was and says what Microsoft answered. Connecting the tenant that
    was connected before (rotating a secret or certificate) keeps the settings, the delta state, the
    overrides and the schedule: only the credential changes, and the audit says so (§2). A first
    connect, or another tenant (refused without ``new_tenant`` once people were synced), starts from
    the §2 defaults. ``connected_by`` names who connected it (the Microsoft admin who consented).
    """
    creds = Credentials(creds.tenant_id.strip().lower(), creds.client_id.strip().lower(), creds.client_credential)
    if tenant_taken(ctx, creds.tenant_id, org_id):  # before asking Graph anything
        raise ConflictError(TENANT_TAKEN)
    with ctx.read() as uow:
        prior = uow.connections.get(org_id)
        org = uow.orgs.get(org_id) or {}
        synced = uow.people.any_synced(org_id)
    before = (prior or {}).get("tenant_id") or org.get("last_tenant_id")
    same_tenant = before is not None and before.lower() == creds.tenant_id
    if before is not None and not same_tenant and synced and not new_tenant:
        raise ConflictError(NEW_TENANT.format(old=before, new=creds.tenant_id))
    if verify:
        _verify(ctx, creds).close()
    now = ctx.now()
    with ctx.write() as uow:
        if uow.connections.tenant_taken(creds.tenant_id, org_id):
            raise ConflictError(TENANT_TAKEN)
        uow.connections.put(org_id, tenant_id=creds.tenant_id, client_id=creds.client_id,
                            secret_enc=ctx.box.seal(creds.client_credential), now=now,
                            by=connected_by or actor.label)  # fmt: skip
        uow.orgs.set_last_tenant(org_id, creds.tenant_id)
        if same_tenant:
            old_client = (prior or {}).get("client_id")
            entries = [AuditEntry("connection", "rotate_credential", None, "credential", "(stored)", "(replaced)")]
            if old_client and old_client != creds.client_id:
                entries.append(AuditEntry("connection", "rotate_credential", None, "client_id", old_client,
                                          creds.client_id))  # fmt: skip
            uow.audit.write(org_id, actor, now, entries)
        else:
            uow.sync_state.forget(org_id)
            defaults = SyncSettings().public()
            defaults.pop("time_zone")
            defaults.pop("refresh_time")
            current = uow.settings.load(org_id)
            uow.settings.save(org_id, SyncSettings(**{**current.public(), **defaults}), now, schedule_changed=True)
            uow.audit.write(org_id, actor, now, [
                AuditEntry("connection", "connect", None, "tenant_id", before, creds.tenant_id),
                AuditEntry("connection", "connect", None, "client_id", None, creds.client_id),
            ])  # fmt: skip
    return status(ctx, org_id)


def disconnect(ctx: AppContext, org_id: int, actor: Actor) -> ConnectionStatus:
    """Forget tenant, secret and delta state; stop the schedule. Archives nobody, changes no person.
    Disconnecting what is not connected is not an error: there is nothing to do."""
    now = ctx.now()
    with ctx.write() as uow:
        row = uow.connections.get(org_id)
        if row is None:
            return ConnectionStatus(connected=False)
        uow.connections.delete(org_id)
        uow.sync_state.forget(org_id)
        uow.runs.supersede_pending(org_id)
        uow.audit.write(
            org_id, actor, now, [AuditEntry("connection", "disconnect", None, "tenant_id", row["tenant_id"], None)]
        )
    return status(ctx, org_id)


def record_error(ctx: AppContext, org_id: int, message: str | None) -> None:
    """A failed refresh shows on the Integrations row whatever the notification setting (§6)."""
    with ctx.write() as uow:
        uow.connections.record_error(org_id, message)


def tenant_taken(ctx: AppContext, tenant_id: str, org_id: int) -> bool:
    """Whether another organisation is already connected to this Entra tenant.

    One tenant belongs to one organisation: otherwise an admin of organisation B could read A's
    directory through the deployment's app registration, and Sign in with Microsoft (which finds the
    organisation by tenant) could put A's people into B.
    """
    with ctx.read() as uow:
        return uow.connections.tenant_taken(tenant_id, org_id)


def org_for_tenant(ctx: AppContext, tenant_id: str) -> int | None:
    with ctx.read() as uow:
        return uow.connections.org_for_tenant(tenant_id)
