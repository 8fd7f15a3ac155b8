"""The attribute mapping (spec §12) as the CLI and the Mapping page change it: one field at a time, each
change a settings save (probed against Graph, validated, audited) through :mod:`sync_settings`."""

from __future__ import annotations

from typing import Any

from entrasync.domain import fields
from entrasync.domain import mapping as field_mapping
from entrasync.errors import ValidationError
from entrasync.services.context import Actor, AppContext
from entrasync.services.sync_settings import DEFAULT_PROBE, GraphProbe, SyncSettings, load, save


def mapping_rows(settings: SyncSettings) -> list[dict[str, Any]]:
    """The effective mapping as the CLI's table and the Mapping page show it: every directory field (the
    custom slots only when in use), its source, how it is written, its default and label."""
    rows: list[dict[str, Any]] = []
    for m in settings.field_maps():
        f = fields.BY_NAME[m.field]
        if f.custom and m.source is None:
            continue
        base = field_mapping.DEFAULTS[fields.INDEX[m.field]]
        rows.append({
            "field": m.field, "label": field_mapping.label_of(settings.field_maps(), m.field), "source": m.source,
            "write": "create" if m.create_only else "always", "default": m.default, "custom": f.custom,
            "changed": m != base,
        })  # fmt: skip
    return rows


def free_custom_slots(settings: SyncSettings) -> list[str]:
    used = {m.field for m in field_mapping.custom_in_use(settings.field_maps())}
    return [n for n in fields.CUSTOM_FIELDS if n not in used]


def map_field(
    ctx: AppContext, org_id: int, actor: Actor, name: str, *, source: str | None = None,
    create_only: bool | None = None, default: str | None = None, label: str | None = None,
    probe: GraphProbe | None = DEFAULT_PROBE,
) -> tuple[SyncSettings, dict[str, Any]]:  # fmt: skip
    """Change one field's mapping (a settings save: probed against Graph, validated, audited). For a
    custom slot ``name`` may be ``custom`` (the first free slot)."""
    current = load(ctx, org_id)
    if name == "custom":
        free = free_custom_slots(current)
        if not free:
            raise ValidationError({"mapping": f"All {fields.MAX_CUSTOM} custom fields are in use; unmap one first."})
        name = free[0]
    if name not in fields.BY_NAME:
        raise ValidationError({"mapping": f"No directory field '{name[:80]}': see `entrasync settings mapping`."})
    entry = dict(current.mapping.get(name) or {})
    entry.setdefault("source", field_mapping.DEFAULTS[fields.INDEX[name]].source)
    if source is not None:
        entry["source"] = source
    if create_only is not None:
        entry["create_only"] = create_only
    if default is not None:
        entry["default"] = default or None
    if label is not None:
        entry["label"] = label
    return save(ctx, org_id, actor, {"mapping": {**current.mapping, name: entry}}, probe)


def unmap_field(ctx: AppContext, org_id: int, actor: Actor, name: str) -> tuple[SyncSettings, dict[str, Any]]:
    """Back to the default mapping for that field (a custom field stops being read)."""
    current = load(ctx, org_id)
    if name not in fields.BY_NAME:
        raise ValidationError({"mapping": f"No directory field '{name[:80]}': see `entrasync settings mapping`."})
    if name not in current.mapping:
        raise ValidationError({"mapping": f"{name} already has its default mapping; nothing to unmap."})
    rest = {k: v for k, v in current.mapping.items() if k != name}
    return save(ctx, org_id, actor, {"mapping": rest}, None)


def mappable_fields() -> list[tuple[str, str]]:
    """(field, label) of every field the Mapping page offers (the user principal name's source is fixed)."""
    return [(f.name, f.label) for f in fields.FIELDS if f.name not in field_mapping.FIXED]
