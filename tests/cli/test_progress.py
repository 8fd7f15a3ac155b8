"""The CLI's refresh progress bar (issue 5: progress in a terminal)."""

from __future__ import annotations

from entrasync.cli.progress import WIDTH, ProgressPrinter


def test_bar_fills_against_the_previous_count() -> None:
    p = ProgressPrinter(enabled=True, expected=1000)
    assert p.bar("reading", {"people_read": 0}) == f"Reading Microsoft Entra ID [{'.' * WIDTH}] 0 people read"
    half = p.bar("reading", {"people_read": 500})
    assert half.count("#") == WIDTH // 2 and half.endswith("500 people read")
    assert p.bar("reading", {"people_read": 5000}).count("#") == WIDTH, "never more than full"


def test_without_a_previous_count_the_marker_moves() -> None:
    p = ProgressPrinter(enabled=True)
    first, second = p.bar("reading", {"people_read": 10}), p.bar("reading", {"people_read": 20})
    assert first.count("#") == 1 and second.count("#") == 1 and first.index("#") != second.index("#")


def test_phases_after_reading_advance_the_bar() -> None:
    p = ProgressPrinter(enabled=True, expected=10)
    fills = [p.bar(ph, {"changes": 3}).count("#") for ph in ("planning", "applying", "done")]
    assert fills == sorted(fills) and fills[-1] == WIDTH
    assert p.bar("applying", {"changes": 1234}).endswith("1,234 changes")


def test_disabled_printer_writes_nothing(capsys) -> None:  # type: ignore[no-untyped-def]
    p = ProgressPrinter(enabled=False, expected=10)
    p("reading", {"people_read": 5})
    p.close()
    assert capsys.readouterr().err == ""
