"""Lifecycle states of runs, plans and decisions, and the settings' choices, as enums.

They are ``StrEnum``: stored, compared and serialised as their values ("pending", "applied", …), so a
row read back from the database compares equal to the member.
"""

from __future__ import annotations

from enum import StrEnum


class RunOutcome(StrEnum):
    """How a refresh ended (spec §4.8); ``RUNNING`` until it does."""

    RUNNING = "running"
    APPLIED = "applied"
    AWAITING_REVIEW = "awaiting_review"
    HELD = "held"
    FAILED = "failed"
    NO_CHANGES = "no_changes"
    SUPERSEDED = "superseded"


class PlanState(StrEnum):
    """Where a run's plan stands: waiting for review, applied, replaced by a newer one, or none."""

    NONE = "none"
    PENDING = "pending"
    APPLIED = "applied"
    SUPERSEDED = "superseded"


class Decision(StrEnum):
    """A plan row's decision. The first three are an admin's; the rest are rows that are not decisions."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    OVERRIDDEN = "overridden"  # suppressed by an earlier rejection (an override)
    KEPT = "kept"  # an admin added by hand the sync keeps (§4.4)
    CONFLICT = "conflict"  # several Entra users claim one e-mail (§4.3)


DECIDABLE: tuple[Decision, ...] = (Decision.PENDING, Decision.ACCEPTED, Decision.REJECTED)


class Mode(StrEnum):
    """Sync Settings' mode (§3)."""

    MANUAL = "manual"  # Manual comparison: plans wait for review
    AUTO = "auto"  # Auto-sync from Microsoft Entra ID: plans apply at once (unless held)


class Strategy(StrEnum):
    """Sync Settings' strategy (§3, §5)."""

    MANUAL = "manual"  # Manual refresh
    DAILY = "daily"  # Daily refresh at a time in a zone


class Trigger(StrEnum):
    """What started a refresh (§4.8)."""

    BUTTON = "button"
    SCHEDULE = "schedule"
    CLI = "cli"
    API = "api"


class ReadMode(StrEnum):
    FULL = "full"
    DELTA = "delta"


class EventType(StrEnum):
    """The change feed's event types (spec §11); webhooks carry them as ``person.<type>``."""

    CREATED = "created"  # every initial value
    UPDATED = "updated"  # field diffs
    MOVED = "moved"  # field diffs, the manager among them
    ARCHIVED = "archived"  # the reason
    RESTORED = "restored"  # field diffs (status back from archived)

    @property
    def webhook_type(self) -> str:
        return f"person.{self.value}"


class EndpointStatus(StrEnum):
    """A webhook endpoint: deliveries run while active; disabled by an admin or after 3 days of failures."""

    ACTIVE = "active"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    """One event for one endpoint: pending until a 2xx answer, failed when given up (3 days)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class TokenScope(StrEnum):
    """What a personal API token may do, within its owner's role; each implies the ones before it."""

    READ = "read"  # GET
    WRITE = "write"  # changes: people, plans, refreshes, notifications
    ADMIN = "admin"  # settings, the connection, webhooks and tokens

    def allows(self, needed: TokenScope) -> bool:
        order = list(TokenScope)
        return order.index(self) >= order.index(needed)


class RunPhase(StrEnum):
    """Where a run in progress is (``runs.progress["phase"]``); the outcome stays ``running`` throughout.

    ``queued``: recorded with its job, waiting for a worker; ``starting``: a worker claimed it (its lease
    runs from here); the sync itself reports ``reading``, ``planning``, ``applying`` and ``done``.
    """

    QUEUED = "queued"
    STARTING = "starting"
    FAILED = "failed"
