"""The People filters on a field's value (employee type, company, city, country; spec §12 "in People
filters where useful"): which values the filters offer, and a clear error for a field that is none."""

from __future__ import annotations

from collections.abc import Mapping

from entrasync.domain import fields
from entrasync.errors import ValidationError
from entrasync.services.context import AppContext

FACETS = fields.FACET_FIELDS
LABELS = {name: fields.BY_NAME[name].label for name in FACETS}


def facets_of(raw: Mapping[str, str | None]) -> dict[str, str]:
    """The filters asked for: empty values dropped, NUL removed, each cut to its column's length; a
    name that is not a filter field is a :class:`ValidationError` naming the ones there are."""
    out: dict[str, str] = {}
    for name, value in raw.items():
        if name not in LABELS:
            raise ValidationError({name: f"'{name[:60]}' is not a People filter: use {', '.join(FACETS)}."})
        cut = (value or "").replace("\x00", "").strip()[: fields.BY_NAME[name].limit]
        if cut:
            out[name] = cut
    return out


def facet_values(ctx: AppContext, org_id: int) -> dict[str, list[str]]:
    """Each filter field -> the values people who are not archived hold (fields nobody fills left out)."""
    with ctx.read() as uow:
        return uow.people.facet_values(org_id)
