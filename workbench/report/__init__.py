"""Floor 3: one self-contained HTML report from one or more results."""

import sys
import types

from workbench.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]


class _CallablePackage(types.ModuleType):
    """``wb.report([r1, r2], "report.html")``: this package is also the attribute ``workbench.report``
    (Python sets it once the package is imported), so the package itself is the API's ``report`` call."""

    def __call__(self, results, path, title: str = "CNN workbench report"):
        from workbench.core.result import Result

        items = [r if isinstance(r, Result) else Result.load(r) for r in results]
        return write_report(items, path, title=title)


sys.modules[__name__].__class__ = _CallablePackage
