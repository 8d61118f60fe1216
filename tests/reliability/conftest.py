"""Figures from the fault suite: printed at the end of the run and written to
test-artifacts/fault-figures.md (docs/reliability.md quotes a run of it)."""

from pathlib import Path

FAULT_FIGURES = []
ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "fault-figures.md"


def _table():
    from tests.reliability.stack import FIGURES_HEADER, format_row

    separator = "|" + "---|" * (FIGURES_HEADER.count("|") - 1)
    return "\n".join([FIGURES_HEADER, separator, *(format_row(row) for row in FAULT_FIGURES)])


def pytest_terminal_summary(terminalreporter):
    if not FAULT_FIGURES:
        return
    table = _table()
    terminalreporter.write_sep("=", "Lens fault-suite figures")
    terminalreporter.write_line(table)
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(table + "\n")
