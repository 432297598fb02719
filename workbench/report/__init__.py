"""Floor 3: one self-contained HTML report from one or more results."""

from workbench.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
