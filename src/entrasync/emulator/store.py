"""The live, in-memory directory the emulator serves, and the change log that delta reads.

Users are ``__slots__`` objects with interned repeated strings so a 100,000-user tenant stays small.
Every mutation goes through :class:`Tenant` methods, which append to a sequence-numbered change log;
delta queries replay that log, so what list, member and delta reads show can never disagree.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

GLOBAL_ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"
SOFT_DELETE_RETENTION = timedelta(days=30)

# Writable scalar user properties (Graph names). ``businessPhones`` is a list.
USER_PROPERTIES: tuple[str, ...] = (
    "accountEnabled",
    "businessPhones",
    "city",
    "companyName",
    "country",
    "createdDateTime",
    "department",
    "displayName",
    "employeeId",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
)
ALL_USER_PROPERTIES: tuple[str, ...] = ("id", *USER_PROPERTIES)
# What Graph returns for a user when no $select is given.
DEFAULT_USER_SELECT: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_ATTR = {p: p for p in ALL_USER_PROPERTIES}
USER_PROPERTY_BY_LOWER = {p.lower(): p for p in ALL_USER_PROPERTIES}

GROUP_PROPERTIES: tuple[str, ...] = (
    "id",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
)
GROUP_PROPERTY_BY_LOWER = {p.lower(): p for p in GROUP_PROPERTIES}


class User:
    """One directory user. Attribute names are the Graph property names."""

    __slots__ = (
        "_manager",
        "accountEnabled",
        "businessPhones",
        "city",
        "companyName",
        "country",
        "createdDateTime",
        "deletedDateTime",
        "department",
        "displayName",
        "employeeId",
        "givenName",
        "id",
        "jobTitle",
        "mail",
        "mailNickname",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "usageLocation",
        "userPrincipalName",
        "userType",
        "wids",
    )

    id: str
    accountEnabled: bool
    businessPhones: tuple[str, ...]
    city: str | None
    companyName: str | None
    country: str | None
    createdDateTime: str | None
    department: str | None
    displayName: str | None
    employeeId: str | None
    givenName: str | None
    jobTitle: str | None
    mail: str | None
    mailNickname: str | None
    mobilePhone: str | None
    officeLocation: str | None
    preferredLanguage: str | None
    surname: str | None
    usageLocation: str | None
    userPrincipalName: str
    userType: str

    def __init__(self, id: str, **props: Any) -> None:
        self.id = id
        for name in USER_PROPERTIES:
            setattr(self, name, props.get(name))
        if props.get("businessPhones") is None:
            self.businessPhones = ()
        if props.get("accountEnabled") is None:
            self.accountEnabled = True
        if props.get("userType") is None:
            self.userType = "Member"
        self._manager: str | None = None
        self.deletedDateTime: str | None = None
        self.wids: tuple[str, ...] = ()

    def get(self, name: str) -> Any:
        value = getattr(self, name)
        if name == "businessPhones":
            return list(value)
        return value

    def as_dict(self, props: Iterable[str]) -> dict[str, Any]:
        return {p: self.get(p) for p in props}


@dataclass(eq=False)
class Group:
    id: str
    displayName: str
    description: str | None = None
    mailNickname: str = ""
    securityEnabled: bool = True
    mailEnabled: bool = False
    groupTypes: tuple[str, ...] = ()
    mail: str | None = None
    createdDateTime: str = "2020-01-01T00:00:00Z"
    members: dict[str, None] = field(default_factory=dict)  # ordered set of member ids

    def get(self, name: str) -> Any:
        value = getattr(self, name)
        if name == "groupTypes":
            return list(value)
        return value


@dataclass(eq=False)
class Device:
    id: str
    displayName: str
    deviceId: str
    operatingSystem: str = "Windows"
    accountEnabled: bool = True


@dataclass(eq=False)
class OrgContact:
    id: str
    displayName: str
    mail: str | None = None
    givenName: str | None = None
    surname: str | None = None


@dataclass(frozen=True)
class Change:
    """One change-log entry. ``props`` names changed user/group properties (empty for non-updates)."""

    seq: int
    kind: str  # "user" | "group"
    op: str  # "create" | "update" | "soft_delete" | "hard_delete" | "restore" | "manager" | "members"
    object_id: str
    props: tuple[str, ...] = ()
    old_manager: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


class NotFound(KeyError):
    """An admin operation named an object that does not exist."""


class Tenant:
    """The whole live directory plus its change log. Thread-safe for writers (one lock)."""

    def __init__(self, tenant_id: str, domain: str, initial_domain: str) -> None:
        self.tenant_id = tenant_id
        self.domain = domain
        self.initial_domain = initial_domain
        self.users: dict[str, User] = {}
        self.deleted_users: dict[str, User] = {}
        self.order: list[str] = []  # sorted ids of live users: stable paging by key
        self.groups: dict[str, Group] = {}
        self.devices: dict[str, Device] = {}
        self.contacts: dict[str, OrgContact] = {}
        self.upn_index: dict[str, str] = {}
        self.reports: dict[str, set[str]] = {}  # manager id -> direct report ids
        self.admins: list[str] = []  # user ids shown on the sign-in page
        self.departments: list[str] = []
        self.changes: list[Change] = []
        self.delta_epoch = 0
        self.lock = threading.RLock()

    # -- reading -------------------------------------------------------------------------------
    @property
    def seq(self) -> int:
        return len(self.changes)

    def live_users(self) -> Iterator[User]:
        users = self.users
        for uid in self.order:
            yield users[uid]

    def find_user(self, key: str) -> User | None:
        user = self.users.get(key)
        if user is None:
            uid = self.upn_index.get(key.lower())
            user = self.users.get(uid) if uid else None
        return user

    def manager_of(self, user: User) -> User | None:
        mid = user._manager
        return self.users.get(mid) if mid else None

    def object_type(self, oid: str) -> str | None:
        if oid in self.users:
            return "user"
        if oid in self.groups:
            return "group"
        if oid in self.devices:
            return "device"
        if oid in self.contacts:
            return "orgContact"
        return None

    def live_members(self, group: Group) -> list[str]:
        """Direct members that are not soft-deleted."""
        return [m for m in group.members if self.object_type(m) is not None]

    def transitive_members(self, group: Group) -> list[str]:
        seen: dict[str, None] = {}
        visited = {group.id}
        stack = [group]
        while stack:
            g = stack.pop()
            for m in self.live_members(g):
                if m not in seen:
                    seen[m] = None
                sub = self.groups.get(m)
                if sub is not None and sub.id not in visited:
                    visited.add(sub.id)
                    stack.append(sub)
        return list(seen)

    def groups_of(self, oid: str) -> list[Group]:
        return [g for g in self.groups.values() if oid in g.members]

    def purge_expired(self, now: datetime | None = None) -> None:
        """Soft-deleted users older than 30 days become hard-deleted, as in Entra."""
        now = now or datetime.now(UTC)
        for uid, user in list(self.deleted_users.items()):
            when = datetime.fromisoformat(str(user.deletedDateTime).replace("Z", "+00:00"))
            if now - when > SOFT_DELETE_RETENTION:
                self.hard_delete_user(uid)

    # -- building (generator, no change log) -----------------------------------------------------
    def add_user_initial(self, user: User, manager_id: str | None = None) -> None:
        self.users[user.id] = user
        self.order.append(user.id)
        self.upn_index[user.userPrincipalName.lower()] = user.id
        if manager_id:
            user._manager = manager_id
            self.reports.setdefault(manager_id, set()).add(user.id)

    def finish_initial(self) -> None:
        self.order.sort()

    # -- mutations ------------------------------------------------------------------------------
    def _log(self, kind: str, op: str, oid: str, **kw: Any) -> None:
        self.changes.append(Change(seq=len(self.changes) + 1, kind=kind, op=op, object_id=oid, **kw))

    def _require_user(self, uid: str) -> User:
        user = self.find_user(uid)
        if user is None:
            raise NotFound(uid)
        return user

    def create_user(self, props: dict[str, Any]) -> User:
        with self.lock:
            uid = str(props.pop("id", None) or uuid.uuid4())
            manager = props.pop("manager", None) or props.pop("managerId", None)
            clean = {USER_PROPERTY_BY_LOWER[k.lower()]: v for k, v in props.items()}
            if "userPrincipalName" not in clean:
                nick = str(clean.get("mailNickname") or uid[:8])
                clean["userPrincipalName"] = f"{nick}@{self.initial_domain}"
            clean.setdefault("createdDateTime", _now())
            clean.setdefault("displayName", clean["userPrincipalName"].split("@")[0])
            if "businessPhones" in clean and clean["businessPhones"] is not None:
                clean["businessPhones"] = tuple(clean["businessPhones"])
            if clean["userPrincipalName"].lower() in self.upn_index:
                raise ValueError(f"userPrincipalName {clean['userPrincipalName']} already exists")
            user = User(uid, **clean)
            self.users[uid] = user
            bisect.insort(self.order, uid)
            self.upn_index[user.userPrincipalName.lower()] = uid
            self._log("user", "create", uid, props=ALL_USER_PROPERTIES)
            if manager:
                self.set_manager(uid, str(manager))
            return user

    def update_user(self, uid: str, props: dict[str, Any]) -> User:
        with self.lock:
            user = self._require_user(uid)
            changed: list[str] = []
            manager_given = False
            manager_value: str | None = None
            for key, value in props.items():
                if key.lower() in ("manager", "managerid"):
                    manager_given, manager_value = True, value
                    continue
                name = USER_PROPERTY_BY_LOWER.get(key.lower())
                if name is None or name == "id":
                    raise ValueError(f"unknown or read-only user property: {key}")
                if name == "businessPhones":
                    value = tuple(value or ())
                if name == "userPrincipalName":
                    if not value:
                        raise ValueError("userPrincipalName cannot be cleared")
                    self.upn_index.pop(user.userPrincipalName.lower(), None)
                    self.upn_index[str(value).lower()] = user.id
                if name == "accountEnabled" and value is None:
                    raise ValueError("accountEnabled cannot be cleared")
                if getattr(user, name) != value:
                    setattr(user, name, value)
                    changed.append(name)
            if changed:
                self._log("user", "update", user.id, props=tuple(changed))
            if manager_given:
                self.set_manager(user.id, manager_value)
            return user

    def set_manager(self, uid: str, manager_id: str | None) -> None:
        with self.lock:
            user = self._require_user(uid)
            if manager_id is not None:
                mgr = self._require_user(manager_id)
                if mgr.id == user.id:
                    raise ValueError("a user cannot manage themselves")
                manager_id = mgr.id
            old = user._manager
            if old == manager_id:
                return
            if old:
                self.reports.get(old, set()).discard(user.id)
            user._manager = manager_id
            if manager_id:
                self.reports.setdefault(manager_id, set()).add(user.id)
            self._log("user", "manager", user.id, props=("manager",), old_manager=old)

    def soft_delete_user(self, uid: str) -> None:
        with self.lock:
            user = self._require_user(uid)
            del self.users[user.id]
            self.order.pop(bisect.bisect_left(self.order, user.id))
            self.upn_index.pop(user.userPrincipalName.lower(), None)
            user.deletedDateTime = _now()
            self.deleted_users[user.id] = user
            self._log("user", "soft_delete", user.id)
            for g in self.groups_of(user.id):  # membership is kept for restore, but hidden
                self._log("group", "members", g.id, removed=(user.id,))

    def hard_delete_user(self, uid: str) -> None:
        with self.lock:
            user = self.deleted_users.pop(uid, None)
            if user is None:
                live = self._require_user(uid)
                self.soft_delete_user(live.id)
                user = self.deleted_users.pop(live.id)
            for g in self.groups_of(user.id):
                del g.members[user.id]
            for rid in list(self.reports.pop(user.id, set())):
                report = self.users.get(rid) or self.deleted_users.get(rid)
                if report is not None and report._manager == user.id:
                    report._manager = None
                    if rid in self.users:
                        self._log("user", "manager", rid, props=("manager",), old_manager=user.id)
            if user._manager:
                self.reports.get(user._manager, set()).discard(user.id)
            self._log("user", "hard_delete", user.id)

    def restore_user(self, uid: str) -> User:
        with self.lock:
            user = self.deleted_users.pop(uid, None)
            if user is None:
                raise NotFound(uid)
            if user.userPrincipalName.lower() in self.upn_index:
                self.deleted_users[uid] = user
                raise ValueError("a live user already holds this userPrincipalName")
            user.deletedDateTime = None
            self.users[uid] = user
            bisect.insort(self.order, uid)
            self.upn_index[user.userPrincipalName.lower()] = uid
            self._log("user", "restore", uid, props=ALL_USER_PROPERTIES)
            for g in self.groups_of(uid):
                self._log("group", "members", g.id, added=(uid,))
            return user

    def create_group(self, props: dict[str, Any]) -> Group:
        with self.lock:
            gid = str(props.pop("id", None) or uuid.uuid4())
            members = props.pop("members", None) or []
            clean = {GROUP_PROPERTY_BY_LOWER[k.lower()]: v for k, v in props.items()}
            clean.setdefault("displayName", "New group")
            clean.setdefault("mailNickname", str(clean["displayName"]).replace(" ", ""))
            clean.setdefault("createdDateTime", _now())
            if "groupTypes" in clean:
                clean["groupTypes"] = tuple(clean["groupTypes"])
            group = Group(id=gid, **clean)
            self.groups[gid] = group
            self._log("group", "create", gid, props=GROUP_PROPERTIES)
            for m in members:
                self.add_member(gid, str(m))
            return group

    def add_member(self, gid: str, member_id: str) -> None:
        with self.lock:
            group = self.groups.get(gid)
            if group is None:
                raise NotFound(gid)
            if self.object_type(member_id) is None:
                raise NotFound(member_id)
            if member_id == gid:
                raise ValueError("a group cannot contain itself")
            if member_id in group.members:
                raise ValueError("One or more added object references already exist")
            group.members[member_id] = None
            self._log("group", "members", gid, added=(member_id,))

    def remove_member(self, gid: str, member_id: str) -> None:
        with self.lock:
            group = self.groups.get(gid)
            if group is None or member_id not in group.members:
                raise NotFound(member_id)
            del group.members[member_id]
            self._log("group", "members", gid, removed=(member_id,))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iter_changes_since(tenant: Tenant, seq: int, upto: int) -> list[Change]:
    return tenant.changes[seq:upto]
