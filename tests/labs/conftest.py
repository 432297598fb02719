"""One run cache for every lab test: students who share a variant, and runs that do not depend on the
variant, are computed once per test session (the batch grader's own mechanism)."""

from __future__ import annotations

import pytest

from workbench.runtime.labs import RunCache


@pytest.fixture(scope="session")
def lab_cache() -> RunCache:
    return RunCache(None, max_entries=256)
