"""Graph user JSON -> :class:`~entrasync.domain.model.EntraUser`, for full listings and delta rounds.

Built from the table of mapped fields (domain.fields): values are cut to their column and freed of NUL
characters here, on the snapshot, so plans compare like with like and converge. A full listing's
users arrive as rows decoded and checked by msgspec (typed_pages, :meth:`UserMapper.user_from_row`),
or as orjson's dicts when a page holds something to fit (:meth:`UserMapper.user_from_graph`). Either
runs 100,000 times per read: a generated tuple display of attribute reads or ``dict.get`` calls and
direct slot writes, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from entrasync.adapters.graph import typed_pages
from entrasync.adapters.graph.errors import GraphTransientError
from entrasync.adapters.graph.typed_pages import Source
from entrasync.domain import fields, mapping, shared_values
from entrasync.domain.mapping import FieldMap
from entrasync.domain.model import EntraUser

USER_TYPE = "#microsoft.graph.user"


def manager_id_of(manager: Any) -> str | None:
    """Id of an expanded manager; an orgContact (or anything not a user) is no manager for us."""
    if not isinstance(manager, dict):
        return None
    odata_type = manager.get("@odata.type")
    if odata_type is not None and odata_type != USER_TYPE:
        return None
    mid = manager.get("id")
    return mid if isinstance(mid, str) else None


MAX_ID = 64  # directory object ids are GUIDs (36 characters); the people table keeps 64

_K = fields.FieldKind


def _text(v: Any, limit: int) -> Any:
    """A TEXT field's value from any Graph value: strings fitted, other scalars as text, lists joined."""
    if v is None or v.__class__ is str:
        return fields.fit(v, limit)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return fields.fit(", ".join(str(x) for x in v if x is not None), limit) or None
    if isinstance(v, dict):
        return None
    return fields.fit(str(v), limit)


def _on_prem(v: Any, attr: str) -> Any:
    return v.get(attr) if isinstance(v, dict) else None


def _converter(f: fields.MappedField, fm: FieldMap) -> Callable[[Any], Any]:
    """Raw Graph value of the field's source -> the directory's value (fitted, defaulted)."""
    limit, default = f.limit, fm.default
    if f.kind is _K.DEPARTMENTS:
        dflt = fields.departments_of(default, limit)
        return lambda v: fields.departments_of(v, limit) or dflt
    if f.kind is _K.DATE:
        dday = fields.date_of(default)
        return lambda v: fields.date_of(v) or dday
    if f.kind is _K.LIST:
        dlist = (fields.fit(default, limit),) if default else ()
        return lambda v: fields.list_of(v, limit) or dlist
    if default is None:
        return lambda v: _text(v, limit)
    return lambda v: _text(v, limit) or default


def _extractor(fm: FieldMap) -> Callable[[Mapping[str, Any]], Any]:
    top, nested = fm.top, fm.nested
    if top is None:
        return lambda d: None
    if nested is not None:
        return lambda d: _on_prem(d.get(top), nested)
    return lambda d: d.get(top)


def _unusual(var: str, limit: int) -> str:
    """Generated code: the variable holds something other than None or a string that fits as it is (not
    a string, too long, a NUL in it): the user takes the field-by-field path."""
    return f"({var} is not None and ({var}.__class__ is not str or len({var}) > {limit} or '\\x00' in {var}))"


class _Dates(dict[str, str | None]):
    """Graph DateTimeOffsets -> their dates, memoised (bounded): the fast path's date conversion."""

    def __missing__(self, key: str) -> str | None:
        if len(self) > 50_000:
            self.clear()
        value = self[key] = fields.date_of(key)
        return value


_DATES = _Dates()


class UserMapper:
    """Graph user JSON -> :class:`EntraUser` under one mapping (domain.mapping), compiled once per
    mapping. ``user_from_graph`` runs 100,000 times per read: a generated function reads each source
    once, checks it fits (no NUL, not too long, a string) and builds the values tuple; anything odd takes
    the slow path, which converts field by field."""

    def __init__(self, maps: tuple[FieldMap, ...] = mapping.DEFAULTS) -> None:
        self.maps = maps
        self.select = mapping.select(maps)
        self._email = maps[fields.EMAIL]
        self._slow = tuple((_extractor(fm), _converter(f, fm)) for f, fm in zip(fields.FIELDS, maps, strict=True))
        # (top-level property, index, extractor, converter) for merging partial delta objects.
        self._delta = tuple(
            (fm.top, i, ex, conv)
            for i, (fm, (ex, conv)) in enumerate(zip(maps, self._slow, strict=True))
            if fm.top is not None and i != fields.EMAIL
        )
        self._email_get = _extractor(self._email)
        self._fast, sources = self._compile(typed=False)
        self._from_row, _ = self._compile(typed=True)
        decoder = typed_pages.decoder_for(sources, MAX_ID)
        #: A users page's body -> its checked rows, or None for orjson's dicts (typed_pages); None: this
        #: mapping always reads dicts.
        self.page_decoder: Callable[[bytes], dict[str, Any] | None] | None = None if decoder is None else decoder.decode

    def user_from_row(self, r: Any, manager_id: str | None = None) -> EntraUser:
        """A row of :attr:`page_decoder`'s page -> the user (its values are checked already)."""
        user = self._from_row(r, manager_id, _new_user, *_set, manager_id_of)
        assert user is not None
        return user

    def _compile(self, typed: bool) -> tuple[Callable[..., EntraUser | None], dict[tuple[str, str | None], Source]]:
        """Generate the per-user function. ``typed``: it reads a row of :mod:`typed_pages` (values already
        checked by the decoder: None or a string that fits) instead of a dict, so it checks nothing."""
        row = "r" if typed else "d"
        lines = [f"def fast({row}, manager_id, new, s0, s1, s2, s3, s4, s5, mgr):"]
        if not typed:
            lines.append("    get = d.get")
        sources: dict[tuple[str, str | None], Source] = {}
        consts: dict[str, Any] = {
            "EntraUser": EntraUser, "list_of": fields.list_of, "DC": _DATES, "ST": shared_values.TEXTS,
            "SD": shared_values.DEPARTMENTS,
        }  # fmt: skip
        checks: list[str] = []

        def var_of(fm: FieldMap, limit: int | None) -> str | None:
            """The variable holding the field's source; ``limit``: the source must be None or a string of
            at most that length for the fast path (None: any value, the expression copes)."""
            top = fm.top
            if top is None:
                return None
            key = (top, fm.nested)
            if key not in sources:
                var = f"v{len(sources)}"
                sources[key] = Source(var, None)
                if typed and fm.nested is None:
                    lines.append(f"    {var} = r.{var}")
                elif typed:
                    attr = typed_pages.nested_attr(top)
                    lines.append(f"    {var} = t.{var} if (t := r.{attr}) is not None else None")
                else:
                    lines.append(f"    {var} = get({top!r})")
                    if fm.nested is not None:
                        lines.append(f"    {var} = {var}.get({fm.nested!r}) if {var}.__class__ is dict else None")
            found = sources[key]
            if limit is not None:
                sources[key] = Source(found.var, limit if found.limit is None else min(found.limit, limit))
                checks.append(_unusual(found.var, limit))
            return found.var

        def const(value: Any) -> str:
            if value is None or value == () or (isinstance(value, tuple) and all(type(x) is str for x in value)):
                return repr(value)  # a literal: no global lookup per user
            name = f"c{len(consts)}"
            consts[name] = value
            return name

        parts: list[str] = []
        email_var = var_of(self._email, fields.BY_NAME["email"].limit) or "None"
        upn_var = var_of(self.maps[fields.UPN], fields.BY_NAME["user_principal_name"].limit) or "None"
        for f, fm in zip(fields.FIELDS, self.maps, strict=True):
            if f.name == "email":
                parts.append(f"({email_var} or {upn_var} or '')")
                continue
            if f.name == "user_principal_name":
                parts.append(f"({upn_var} or '')")
                continue
            var = var_of(fm, None if f.kind in (_K.DATE, _K.LIST) else f.limit)
            if var is None:
                parts.append(const(_converter(f, fm)(None)))
                continue
            if f.kind is _K.DEPARTMENTS:
                dflt = const(fields.departments_of(fm.default, f.limit))
                parts.append(f"(SD[{var}] if {var}.__class__ is str and {var} else {dflt})")
            elif f.kind is _K.DATE:
                # Hire dates repeat (a few thousand distinct values): each is checked once, then looked up.
                dflt = const(fields.date_of(fm.default))
                parts.append(f"((DC[{var}] if {var}.__class__ is str else None) or {dflt})")
            elif f.kind is _K.LIST:
                # Graph's string collections here hold at most one phone: that case inline, the rest by call.
                dflt = const((fields.fit(fm.default, f.limit),) if fm.default else ())
                one = (
                    f"({var}.__class__ is list and len({var}) == 1 and (x := {var}[0]).__class__ is str "
                    f"and 0 < len(x) <= {f.limit} and '\\x00' not in x)"
                )
                parts.append(f"((() if not {var} else (x,) if {one} else list_of({var}, {f.limit})) or {dflt})")
            else:
                # Checked: None or a string that fits, so it can be looked up as it is.
                value = f"ST[{var}]" if f.name in shared_values.SHARED_FIELDS else var
                parts.append(value if fm.default is None else f"({value} or {const(fm.default)})")
        if typed:
            lines += ["    uid = r.id", "    if manager_id is None:", "        m = r.manager"]
            enabled, user_type = "r.account_enabled", "r.user_type"
        else:
            lines.append("    if " + (" or ".join(checks) or "False") + ":")
            lines.append("        return None")
            lines += [
                "    uid = d['id']",
                f"    if uid.__class__ is not str or not 0 < len(uid) <= {MAX_ID}:",
                "        return None",
                "    if manager_id is None:",
                "        m = get('manager')",
            ]
            enabled, user_type = "get('accountEnabled')", "get('userType')"
        lines += [
            "        if m is not None:",
            "            manager_id = mgr(m)",
            "    user = new(EntraUser)",
            "    s0(user, uid)",
            "    s1(user, (" + ", ".join(parts) + ",))",
            f"    s2(user, {email_var})",
            f"    s3(user, {enabled} is not False)",
            f"    s4(user, ST[t] if (t := {user_type}).__class__ is str else t)",
            "    s5(user, manager_id)",
            "    return user",
        ]
        exec("\n".join(lines) + "\n", consts)
        made: Callable[..., EntraUser | None] = consts["fast"]
        return made, sources

    def values(self, d: Mapping[str, Any]) -> tuple[Any, ...]:
        """The mapped values of one Graph user, field by field (the slow path)."""
        values = [conv(ex(d)) for ex, conv in self._slow]
        values[fields.UPN] = values[fields.UPN] or ""
        mail = values[fields.EMAIL]
        values[fields.EMAIL] = mail or values[fields.UPN] or ""
        return tuple(values)

    def user_from_graph(self, d: Mapping[str, Any], manager_id: str | None = None) -> EntraUser:
        user = self._fast(d, manager_id, _new_user, *_set, manager_id_of)
        if user is not None:
            return user
        uid = d["id"]
        if type(uid) is not str or not 0 < len(uid) <= MAX_ID:
            raise GraphTransientError(f"Graph returned a user whose id is not a directory object id: {str(uid)[:80]!r}")
        if manager_id is None and "manager" in d:
            manager_id = manager_id_of(d["manager"])
        get = d.get
        values = self.values(d)
        user = _new_user(EntraUser)  # frozen slots: write the slots directly (~3x faster than __init__)
        s = _set
        s[0](user, uid)
        s[1](user, values)
        s[2](user, _text(self._email_get(d), fields.BY_NAME["email"].limit))
        s[3](user, get("accountEnabled") is not False)
        s[4](user, get("userType"))
        s[5](user, manager_id)
        return user

    def merge_delta_user(self, old: EntraUser | None, item: Mapping[str, Any]) -> EntraUser:
        """Apply one delta object: absent property = unchanged, ``null`` = cleared."""
        if old is None:
            manager_id = _manager_from_delta(item["manager@delta"]) if "manager@delta" in item else None
            return self.user_from_graph(item, manager_id)
        values = list(old.values)
        for top, i, ex, conv in self._delta:
            if top in item:
                values[i] = conv(ex(item))
        values[fields.UPN] = values[fields.UPN] or ""
        email_top = self._email.top
        mail = (
            _text(self._email_get(item), fields.BY_NAME["email"].limit)
            if email_top is not None and email_top in item
            else old.mail
        )
        values[fields.EMAIL] = mail or values[fields.UPN] or ""
        enabled = item["accountEnabled"] is not False if "accountEnabled" in item else old.account_enabled
        if "manager@delta" in item:
            manager_id = _manager_from_delta(item["manager@delta"])
        elif "manager" in item:
            manager_id = manager_id_of(item["manager"])
        else:
            manager_id = old.manager_id
        user_type = item.get("userType", old.user_type)
        return EntraUser(old.id, tuple(values), mail, enabled, user_type, manager_id)

    def apply_delta(
        self, users: dict[str, EntraUser], soft_deleted: set[str], items: Iterable[Mapping[str, Any]]
    ) -> None:
        """Merge delta items into ``users``/``soft_deleted`` in place (callers pass copies).

        ``@removed`` reason ``changed`` = deleted but restorable (soft delete), ``deleted`` = gone for good;
        a restored user comes back without annotation
        (https://learn.microsoft.com/graph/delta-query-users, "Initial response").
        """
        for item in items:
            uid = item.get("id")
            if not isinstance(uid, str):
                continue
            removed = item.get("@removed")
            if removed is not None:
                users.pop(uid, None)
                reason = removed.get("reason") if isinstance(removed, dict) else None
                if reason == "deleted":
                    soft_deleted.discard(uid)
                else:  # "changed" (and anything unknown): still restorable from deletedItems
                    soft_deleted.add(uid)
                continue
            soft_deleted.discard(uid)
            users[uid] = self.merge_delta_user(users.get(uid), item)


_new_user = EntraUser.__new__
_set = tuple(
    getattr(EntraUser, n).__set__ for n in ("id", "values", "mail", "account_enabled", "user_type", "manager_id")
)
_MAPPERS: dict[tuple[FieldMap, ...], UserMapper] = {}


def mapper_for(maps: tuple[FieldMap, ...] = mapping.DEFAULTS) -> UserMapper:
    """The compiled mapper of a mapping (one per distinct mapping per process)."""
    found = _MAPPERS.get(maps)
    if found is None:
        if len(_MAPPERS) > 64:
            _MAPPERS.clear()
        found = _MAPPERS[maps] = UserMapper(maps)
    return found


DEFAULT_MAPPER = mapper_for()


def user_from_graph(d: Mapping[str, Any], manager_id: str | None = None) -> EntraUser:
    """Graph user JSON -> :class:`EntraUser` under the default mapping."""
    return DEFAULT_MAPPER.user_from_graph(d, manager_id)


def _manager_from_delta(entries: Any) -> str | None:
    """``manager@delta``: a list of directory objects; entries with ``@removed`` are links removed.

    The manager is the last entry still linked; none left means the manager was cleared.
    """
    if not isinstance(entries, list):
        return None
    current: str | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if "@removed" in entry:
            if entry.get("id") == current:
                current = None
            continue
        current = manager_id_of(entry)
    return current


def merge_delta_user(old: EntraUser | None, item: Mapping[str, Any]) -> EntraUser:
    """Apply one delta object under the default mapping: absent property = unchanged, ``null`` = cleared."""
    return DEFAULT_MAPPER.merge_delta_user(old, item)


def apply_delta(users: dict[str, EntraUser], soft_deleted: set[str], items: Iterable[Mapping[str, Any]]) -> None:
    """Merge delta items under the default mapping (see :meth:`UserMapper.apply_delta`)."""
    DEFAULT_MAPPER.apply_delta(users, soft_deleted, items)
