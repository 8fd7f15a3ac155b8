"""The words the pages use (no database, no browser): Microsoft's consent errors with advice, counts
without zeros, values as text, outcomes as they stand now, audit rows, the runs chart's geometry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from entrasync.services.consent_advice import GENERIC, explain
from entrasync.web import present
from entrasync.web.chart import HEIGHT, runs_chart
from entrasync.web.review_view import change_view


@pytest.mark.parametrize(
    ("error", "description", "expected"),
    [
        ("access_denied", "AADSTS65004: User declined to consent to access the app.", "press Connect again"),
        ("invalid_request", "AADSTS90094: The grant requires admin permission.", "Global Administrator"),
        ("permission_denied", "AADSTS90093: This operation can only be performed by an administrator.", "Global"),
        ("unauthorized_client", "AADSTS700016: Application with identifier 'x' was not found", "ENTRASYNC_CLIENT_ID"),
        ("invalid_request", "AADSTS50020: User account 'a@b.com' from identity provider 'live.com' does not", "work"),
        ("invalid_request", "AADSTS900971: No reply address provided.", "/auth/microsoft/callback"),
        ("consent_required", "AADSTS65001: The user or administrator has not consented", "Accept the permissions"),
        ("access_denied", None, "press Connect again"),
    ],
)
def test_common_consent_errors_get_plain_advice(error: str, description: str | None, expected: str) -> None:
    problem = explain(error, description, "https://people.example.com/")
    assert expected in problem.advice
    assert problem.microsoft == (description or error)
    assert "{base}" not in problem.advice


def test_unknown_codes_keep_microsofts_text_and_get_generic_advice() -> None:
    text = "AADSTS1234567: Something new happened.\r\nTrace ID: abc\r\nCorrelation ID: def"
    problem = explain("server_error", text)
    assert problem.microsoft == "AADSTS1234567: Something new happened."
    assert problem.advice == GENERIC
    assert problem.code == "AADSTS1234567"
    assert problem.lookup_url == "https://login.microsoftonline.com/error?code=1234567"
    assert "Correlation ID: def" in problem.details


def test_counts_never_list_zeros() -> None:
    assert present.counts_words({"create": 3, "update": 0, "archive": 1, "matched": 50}) == "3 new, 1 archived"
    assert present.counts_words({"create": 0}) == "No changes"
    assert present.counts_words(None, empty="nothing") == "nothing"


def test_values_are_text_never_python_reprs() -> None:
    assert present.value_text(["Human Resources"]) == "Human Resources"
    assert present.value_text(["Sales", "Marketing"]) == "Sales, Marketing"
    assert present.value_text([]) == "–"
    assert present.value_text(None) == "–"


def test_a_superseded_held_run_does_not_read_held() -> None:
    run = {"outcome": "held", "plan_state": "superseded"}
    assert present.outcome_of(run) == "superseded"
    assert "held" not in present.outcome_words(run)
    assert present.outcome_of({"outcome": "held", "plan_state": "pending"}) == "held"


def test_trigger_names_the_person_not_the_button() -> None:
    run = {"trigger": "button", "triggered_by": "ian@example.com"}
    assert present.trigger_words(run, {"ian@example.com": "Ian Admin"}) == "Refresh button, by Ian Admin"
    assert present.trigger_words({"trigger": "schedule", "triggered_by": "cli"}) == "Daily schedule"


def test_audit_create_lists_initial_values_in_field_order() -> None:
    row = present.audit_row({"action": "create", "new": '{"departments":["Sales"],"display_name":"Ada","email":"a@x"}'})
    assert row["what"] == "Created"
    assert row["initial"] == [("E-mail", "a@x"), ("Name", "Ada"), ("Departments", "Sales")]
    assert present.audit_row({"action": "create", "new": "{}"})["initial"] == []
    moved = present.audit_row({"action": "move", "field": "manager", "old": "12", "new": None}, {12: "Bo"})
    assert (moved["old"], moved["new"]) == ("Bo", "")


def test_review_rows_name_managers_and_show_a_joiners_details() -> None:
    update = change_view(
        {
            "id": 1,
            "kind": "move",
            "reason": "manager_changed",
            "display_name": "Zoë",
            "email": "zoe@x",
            "diffs": [
                {"field": "manager", "old": "old@x", "new": "NEW@x", "manual_edit": False},
                {"field": "departments", "old": ["HR"], "new": ["Marketing"], "manual_edit": True},
            ],
            "manager_names": {"old@x": "Old Boss", "new@x": "New Boss"},
            "decision": "pending",
            "applied": False,
        }
    )
    assert [(d.label, d.old, d.new, d.manual) for d in update.details] == [
        ("Manager", "Old Boss", "New Boss", False),
        ("Departments", "HR", "Marketing", True),
    ]
    joiner = change_view(
        {
            "id": 2,
            "kind": "create",
            "reason": "joiner",
            "display_name": None,
            "email": "new@x",
            "diffs": [],
            "target": {"display_name": "New Person", "job_title": "Designer", "departments": ["Marketing"]},
            "target_manager": {"id": None, "name": "Zoë", "joiner": True},
            "decision": "pending",
            "applied": False,
        }
    )
    assert joiner.name == "New Person"
    assert [(d.label, d.new) for d in joiner.details] == [
        ("Job title", "Designer"),
        ("Department", "Marketing"),
        ("Manager", "Zoë (joins in this plan too)"),
    ]
    archive = change_view(
        {
            "id": 3,
            "kind": "archive",
            "reason": "disabled",
            "diffs": [{"field": "status", "old": "active", "new": "archived", "manual_edit": False}],
            "decision": "pending",
            "applied": False,
            "display_name": "A",
        }
    )
    assert archive.css == "archive" and archive.details[0].css == "archive"


def test_chart_uses_a_log_scale_and_marks_failed_runs() -> None:
    when = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    runs = [
        {"id": 1, "outcome": "applied", "counts": {"create": 100_000}, "started_at": when},
        {"id": 2, "outcome": "failed", "counts": {}, "started_at": when},
        {"id": 3, "outcome": "applied", "counts": {"create": 3, "archive": 7}, "started_at": when},
    ]
    chart = runs_chart(runs)
    assert [b.run_id for b in chart.bars] == [1, 2, 3]
    big, failed, small = chart.bars
    assert failed.css == "failed" and not failed.segments
    assert sum(s.height for s in small.segments) > HEIGHT / 10  # visible beside 100,000, thanks to the log scale
    assert [s.css for s in small.segments] == ["new", "archive"]
    assert big.segments[0].height > sum(s.height for s in small.segments)
    assert "1 failed" in chart.summary


def test_a_notification_reads_from_its_run_as_it_stands_now() -> None:
    from entrasync.web.pages.me import _notice

    asked = {"id": 1, "run_id": 7, "title": "185 changes await your review", "body": "Refresh finished: 185 archived."}
    waiting = _notice(asked, {"id": 7, "plan_state": "pending", "counts": {"archive": 185}}, True)
    assert waiting["title"] == asked["title"] and waiting["link"] == ("Review the plan", "/user-sync")
    applied = _notice(asked, {"id": 7, "plan_state": "applied", "counts": {"archive": 185}}, True)
    assert applied["title"] == "Plan of run 7 applied" and "await" not in applied["body"]
    assert applied["link"] == ("Open run 7", "/user-sync/runs/7")
    replaced = _notice({**asked, "title": "Refresh held for review"}, {"id": 7, "plan_state": "superseded"}, False)
    assert "replaced by a newer refresh" in replaced["title"] and replaced["link"] is None
    failed = _notice({"id": 2, "run_id": 8, "title": "Refresh failed", "body": "x"}, {"id": 8, "plan_state": ""}, True)
    assert failed["title"] == "Refresh failed"
