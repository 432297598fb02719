"""Floor 3: one self-contained HTML report from one or more results."""

import sys
import types

from workbench.report.complete import check_complete
from workbench.report.html import figure_bytes, render_report, write_report

__all__ = ["check_complete", "figure_bytes", "render_report", "write_report"]


class _CallablePackage(types.ModuleType):
    """``wb.report([r1, r2], "report.html")``: this package is also the attribute ``workbench.report``
    (Python sets it once the package is imported), so the package itself is the API's ``report`` call."""

    def __call__(self, results, path, title: str = "CNN workbench report"):
        from workbench.core.result import Result

        items = [r if isinstance(r, Result) else Result.load(check_complete(r)) for r in results]
        return write_report(items, path, title=title)


sys.modules[__name__].__class__ = _CallablePackage
