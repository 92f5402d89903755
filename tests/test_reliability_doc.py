"""docs/RELIABILITY.md is rendered from the rows the real tests record; a failed row says so."""

from ci.reliability import render


def test_rows_become_tables_with_counts_and_a_failed_row_stands_out():
    rows = [
        {"id": "t.py::test_a", "kind": "fault", "what": "dockerd stopped", "did": "build ERROR | infra",
         "exit": 3, "kept": "results.json", "resume": "exit 0", "ok": True, "when": "2026-11-26"},
        {"id": "t.py::test_b", "kind": "fault", "what": "disk full", "did": "TEST FAILED: boom", "exit": None,
         "kept": "", "resume": "", "ok": False, "when": "2026-11-26"},
        {"id": "h.py::test_c[fork]", "kind": "hostile", "what": "fork bomb", "did": "build FAIL", "exit": 1,
         "kept": "-", "resume": "n/a", "ok": True, "when": "2026-11-26"},
    ]
    text = render(rows)
    assert "## Faults of the machine: 1 of 2 survived" in text
    assert "## Hostile patches: 1 of 1 contained" in text
    assert "| dockerd stopped | build ERROR \\| infra | 3 |" in text  # a pipe in a cell is escaped
    assert "**FAILED**" in text and "`test_c[fork]`" in text
