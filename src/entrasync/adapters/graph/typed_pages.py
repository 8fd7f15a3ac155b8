"""A users page decoded straight into checked rows: the first sync's read without a dict per user.

orjson builds a dict of every property of every user, and the generated mapper (``mapping``) then
looks each mapped property up and checks it (None or a string that fits its column, no NUL). msgspec
decodes the page into rows of the mapped properties only and checks the same while decoding, in C; the
mapper's typed variant then only shapes the values. At 100,000 users the read's CPU went from 2.18 to
1.30 s with it, the floor's being 0.94 s (``bench/reads.py``, with the GC change of runners.tuning).

Only a page that passes every check whole is decoded this way: one value that is not a string, too
long for its column, or a NUL anywhere in the body, and :meth:`PageDecoder.decode` returns None; the
caller parses that page with orjson and maps it user by user as before, the slow path fitting what
does not fit. So the two paths give the same users (``tests/graph/test_typed_pages.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, NamedTuple

import msgspec


class Source(NamedTuple):
    """One Graph property the generated mapper reads: its variable, and the longest string the fast path
    takes as it is (None: any value; the expression that uses it copes with anything)."""

    var: str
    limit: int | None


# Read by the mapper itself (the id, the manager, enabled, the user type), under fixed attribute names.
_FIXED = frozenset({"id", "manager", "accountEnabled", "userType"})


def nested_attr(top: str) -> str:
    """The row attribute holding a complex property (``onPremisesExtensionAttributes``)."""
    return f"n_{top}"


def _kind(limit: int | None) -> Any:
    if limit is None:
        return Any
    return Annotated[str, msgspec.Meta(max_length=limit)] | None


class PageDecoder:
    """Decodes a Graph users page (``value`` and ``@odata.nextLink``) into rows for one mapping."""

    def __init__(self, row: type[msgspec.Struct]) -> None:
        page = msgspec.defstruct(
            "UsersPage",
            [("value", list[row]), ("next_link", Any, msgspec.field(default=None, name="@odata.nextLink"))],  # type: ignore[valid-type]
            gc=False,
        )
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(page)

    def decode(self, body: bytes) -> dict[str, Any] | None:
        """The page as ``{"value": [row, ...], "@odata.nextLink": ...}``, or None when any value needs the
        field-by-field path (or the body is not such a page: orjson's path then says what is wrong)."""
        if b"\\u0000" in body:  # a NUL in some string (JSON can only write it escaped): fitted user by user
            return None
        try:
            page = self._decoder.decode(body)
        except msgspec.MsgspecError:
            return None
        if page.next_link is None:
            return {"value": page.value}
        return {"value": page.value, "@odata.nextLink": page.next_link}


def decoder_for(sources: Mapping[tuple[str, str | None], Source], max_id: int) -> PageDecoder | None:
    """The page decoder of a mapping's sources, or None when the rows cannot express it (a property read
    both whole and nested, or one of the properties the mapper reads for itself)."""
    flat: list[tuple[str, Any, Any]] = []
    nested: dict[str, list[tuple[str, Any, Any]]] = {}
    for (top, inner), src in sources.items():
        if top in _FIXED or not top.isidentifier():
            return None
        spec = (src.var, _kind(src.limit), msgspec.field(default=None, name=inner or top))
        if inner is None:
            flat.append(spec)
        else:
            nested.setdefault(top, []).append(spec)
    tops = {top for (top, inner) in sources if inner is None}
    if tops & set(nested):
        return None
    fields: list[tuple[str, Any, Any]] = [
        ("id", Annotated[str, msgspec.Meta(min_length=1, max_length=max_id)]),  # type: ignore[list-item]
        *flat,
        ("account_enabled", Any, msgspec.field(default=None, name="accountEnabled")),
        ("user_type", Any, msgspec.field(default=None, name="userType")),
        ("manager", Any, None),
    ]
    for top, specs in nested.items():
        inner_row = msgspec.defstruct(f"Row_{top}", specs, gc=False)
        fields.append((nested_attr(top), inner_row | None, msgspec.field(default=None, name=top)))
    row = msgspec.defstruct("UserRow", fields, gc=False)
    return PageDecoder(row)


__all__ = ["PageDecoder", "Source", "decoder_for", "nested_attr"]
