"""On a failed browser test, keep a full-page screenshot of what the browser showed
(artifacts/screenshots/FAILED-<test>.png), so a failure under load can be read afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and page is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=SHOTS / f"FAILED-{item.name}.png", full_page=True)
        except Exception as e:  # noqa: BLE001 - a dead browser must not hide the test's own failure
            report.sections.append(("screenshot", f"no screenshot: {e}"))
