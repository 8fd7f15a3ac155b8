"""The live, in-memory directory the emulator serves, and the change log that delta reads.

Every mutation goes through :class:`Tenant` methods, which append to a sequence-numbered change log;
delta queries replay that log, so what list, member and delta reads show can never disagree.
Directory extensions (https://learn.microsoft.com/graph/api/resources/extensionproperty) are
registered per tenant on an owner application and stored on users as ``extension_{appId}_{name}``.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from entrasync.emulator.objects import (
    ALL_USER_PROPERTIES,
    DEFAULT_USER_SELECT,
    EXTENSION_PREFIX,
    GLOBAL_ADMIN_ROLE,
    GROUP_PROPERTIES,
    GROUP_PROPERTY_BY_LOWER,
    ON_PREM,
    USER_PROPERTIES,
    USER_PROPERTY_BY_LOWER,
    Change,
    Device,
    Group,
    OrgContact,
    User,
    merge_on_prem,
)

__all__ = [
    "ALL_USER_PROPERTIES",
    "DEFAULT_USER_SELECT",
    "GLOBAL_ADMIN_ROLE",
    "GROUP_PROPERTIES",
    "GROUP_PROPERTY_BY_LOWER",
    "USER_PROPERTIES",
    "USER_PROPERTY_BY_LOWER",
    "Change",
    "Device",
    "Group",
    "NotFound",
    "OrgContact",
    "Tenant",
    "User",
]

SOFT_DELETE_RETENTION = timedelta(days=30)
EXTENSION_TYPES = {"String": str, "Boolean": bool, "Integer": int, "LargeInteger": int, "DateTime": str}


class NotFound(KeyError):
    """An admin operation named an object that does not exist."""


def _lower(text: str) -> str:
    """``text.lower()``, reusing ``text`` itself when it is already lower case (one string, not two)."""
    return text if text.islower() else text.lower()


def _unknown_property(name: str) -> ValueError:
    # Graph's answer to a create/update naming a property the user type does not have.
    return ValueError(f"Property '{name}' does not exist as a declared property or extension property.")


class Tenant:
    """The whole live directory plus its change log. Thread-safe for writers (one lock)."""

    def __init__(self, tenant_id: str, domain: str, initial_domain: str, display_name: str = "") -> None:
        self.tenant_id = tenant_id
        self.domain = domain
        self.initial_domain = initial_domain
        self.display_name = display_name or domain.split(".")[0].capitalize()
        self.users: dict[str, User] = {}
        self.deleted_users: dict[str, User] = {}
        self.order: list[str] = []  # sorted ids of live users: stable paging by key
        self.groups: dict[str, Group] = {}
        self.devices: dict[str, Device] = {}
        self.contacts: dict[str, OrgContact] = {}
        self.upn_index: dict[str, str] = {}
        self.admins: list[str] = []  # user ids shown on the sign-in page
        self.departments: list[str] = []
        self.changes: list[Change] = []
        self.delta_epoch = 0
        self.lock = threading.RLock()
        # Directory extensions: the owner application and its extensionProperty definitions.
        self.extension_app: dict[str, str] = {}
        self.extension_properties: list[dict[str, Any]] = []
        self.extension_names: dict[str, str] = {}  # lower-case name -> registered name
        self._ext_shared: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
        self.filter_rules_cache: Any = None  # built by the Graph layer from the registered extensions

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

    def reports_of(self, uid: str) -> list[User]:
        """Direct reports, live or soft-deleted (a scan: only hard deletes and the generator need it)."""
        return [u for pool in (self.users, self.deleted_users) for u in pool.values() if u._manager == uid]

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

    def member_of(self, oid: str) -> list[str]:
        """The groups that hold ``oid`` as a direct member (``/users/{id}/memberOf``), by id."""
        return sorted(g.id for g in self.groups.values() if oid in g.members)

    def transitive_member_of(self, oid: str) -> list[str]:
        """Every group reaching ``oid`` through nested groups (``/users/{id}/transitiveMemberOf``)."""
        seen: dict[str, None] = {}
        stack = self.member_of(oid)
        while stack:
            gid = stack.pop()
            if gid in seen:
                continue
            seen[gid] = None
            stack.extend(self.member_of(gid))
        return sorted(seen)

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
        if not self.deleted_users:
            return
        now = now or datetime.now(UTC)
        for uid, user in list(self.deleted_users.items()):
            when = datetime.fromisoformat(str(user.deletedDateTime).replace("Z", "+00:00"))
            if now - when > SOFT_DELETE_RETENTION:
                self.hard_delete_user(uid)

    # -- directory extensions --------------------------------------------------------------------
    def register_extension(
        self, name: str, data_type: str = "String", prop_id: str | None = None, synced: bool = False
    ) -> dict[str, Any]:
        """Define ``extension_{appId without dashes}_{name}`` on the owner app, targeting users
        (https://learn.microsoft.com/graph/api/application-post-extensionproperty)."""
        if data_type not in EXTENSION_TYPES:
            raise ValueError(f"dataType must be one of {', '.join(EXTENSION_TYPES)}")
        if not self.extension_app:
            raise ValueError("this tenant has no extension owner application")
        full = f"{EXTENSION_PREFIX}{self.extension_app['appId'].replace('-', '')}_{name}"
        with self.lock:
            if full.lower() in self.extension_names:
                raise ValueError(f"extension property {full} already exists")
            definition = {
                "id": prop_id or str(uuid.uuid4()),
                "deletedDateTime": None,
                "appDisplayName": self.extension_app["displayName"],
                "dataType": data_type,
                "isMultiValued": False,
                "isSyncedFromOnPremises": synced,
                "name": full,
                "targetObjects": ["User"],
            }
            self.extension_properties.append(definition)
            self.extension_names[full.lower()] = full
            self.filter_rules_cache = None
            return definition

    def extension_name(self, name: str) -> str | None:
        """The registered (canonical) name of a directory extension, matched case-insensitively."""
        return self.extension_names.get(name.lower())

    def shared_extensions(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """One shared (never mutated) dict per distinct set of non-null extension values."""
        clean = tuple(sorted((k, v) for k, v in values.items() if v is not None))
        if not clean:
            return None
        found = self._ext_shared.get(clean)
        if found is None:
            found = dict(clean)
            self._ext_shared[clean] = found
        return found

    def _extension_value(self, name: str, value: Any) -> tuple[str, Any]:
        canonical = self.extension_name(name)
        if canonical is None:
            raise _unknown_property(name)
        if value is not None:
            kind = next(p["dataType"] for p in self.extension_properties if p["name"] == canonical)
            expected = EXTENSION_TYPES[kind]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ValueError(f"{canonical} holds a {kind}")
        return canonical, value

    # -- building (generator, no change log) -----------------------------------------------------
    def add_user_initial(self, user: User, manager_id: str | None = None) -> None:
        self.users[user.id] = user
        self.order.append(user.id)
        self.upn_index[_lower(user.userPrincipalName)] = user.id
        if manager_id:
            user._manager = manager_id

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
            clean: dict[str, Any] = {}
            extensions: dict[str, Any] = {}
            for key, value in props.items():
                if key.startswith(EXTENSION_PREFIX):
                    ext_name, value = self._extension_value(key, value)
                    extensions[ext_name] = value
                    continue
                prop = USER_PROPERTY_BY_LOWER.get(key.lower())
                if prop is None or prop == "id":
                    raise _unknown_property(key)
                clean[prop] = value
            if "userPrincipalName" not in clean:
                nick = str(clean.get("mailNickname") or uid[:8])
                clean["userPrincipalName"] = f"{nick}@{self.initial_domain}"
            clean.setdefault("createdDateTime", _now())
            clean.setdefault("displayName", clean["userPrincipalName"].split("@")[0])
            if clean.get("businessPhones") is not None:
                clean["businessPhones"] = tuple(clean["businessPhones"])
            if ON_PREM in clean:
                clean[ON_PREM] = merge_on_prem({}, clean[ON_PREM] or {})
            if clean["userPrincipalName"].lower() in self.upn_index:
                raise ValueError(f"userPrincipalName {clean['userPrincipalName']} already exists")
            user = User(uid, **clean)
            user._ext = self.shared_extensions(extensions)
            self.users[uid] = user
            bisect.insort(self.order, uid)
            self.upn_index[_lower(user.userPrincipalName)] = uid
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
            extensions = user.extensions()
            for key, value in props.items():
                if key.lower() in ("manager", "managerid"):
                    manager_given, manager_value = True, value
                    continue
                if key.startswith(EXTENSION_PREFIX):
                    ext_name, value = self._extension_value(key, value)
                    if extensions.get(ext_name) != value:
                        extensions[ext_name] = value
                        changed.append(ext_name)
                    continue
                name = USER_PROPERTY_BY_LOWER.get(key.lower())
                if name is None or name == "id":
                    raise _unknown_property(key)
                if name == "businessPhones":
                    value = tuple(value or ())
                if name == ON_PREM:
                    value = merge_on_prem(user.onPremisesExtensionAttributes, value)
                if name == "userPrincipalName":
                    if not value:
                        raise ValueError("userPrincipalName cannot be cleared")
                    self.upn_index.pop(user.userPrincipalName.lower(), None)
                    self.upn_index[_lower(str(value))] = user.id
                if name == "accountEnabled" and value is None:
                    raise ValueError("accountEnabled cannot be cleared")
                if getattr(user, name) != value:
                    setattr(user, name, value)
                    changed.append(name)
            if any(c.startswith(EXTENSION_PREFIX) for c in changed):
                user._ext = self.shared_extensions(extensions)
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
            user._manager = manager_id
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
            for report in self.reports_of(user.id):
                report._manager = None
                if report.id in self.users:
                    self._log("user", "manager", report.id, props=("manager",), old_manager=user.id)
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
            self.upn_index[_lower(user.userPrincipalName)] = uid
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
