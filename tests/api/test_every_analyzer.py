"""Every registered analyzer on an in-memory user CNN (smoke-sized configs): it runs, or it refuses with one
typed line; either way the user's module comes back exactly as it was (weights, tensor identities and
version counters, grad flags, train/eval modes, devices, hooks, in-place flags)."""

from __future__ import annotations

import sys

import pytest

import workbench as wb
from tests.api.conftest import assert_unchanged, snapshot
from workbench.core.analyzer import list_analyzers
from workbench.core.errors import ComputeError, WorkbenchError

#: what the notebook promises to run on the user's own model
MUST_RUN = {"attribution", "lrp", "receptive_field", "linear_scope", "kernel_spectra"}


#: registered analyzers, without the deliberately broken ones other test modules register (tests.*)
SHIPPED = [a.name for a in list_analyzers()
           if "/tests/" not in (getattr(sys.modules.get(a.__module__), "__file__", "") or "")]


@pytest.mark.parametrize("name", SHIPPED)
def test_analyzer_runs_or_refuses_and_leaves_the_module_alone(name, user_cnn, digits_batch):
    cls = next(a for a in list_analyzers() if a.name == name)
    x, y = digits_batch
    before = snapshot(user_cnn)
    try:
        result = wb.run(name, model=user_cnn, data=x, labels=y, device="cpu", **cls.smoke_config)
    except WorkbenchError as e:
        assert name not in MUST_RUN, e.one_line()
        assert not isinstance(e, ComputeError), f"{name} broke on a generic module: {e.one_line()}"
        line = e.one_line()
        assert "\n" not in line and e.hint, line  # one line that names the fix
    else:
        assert result.model.startswith("session.") and result.provenance.weights_sha256
        assert result.data.startswith("session:") and result.checks
    assert_unchanged(user_cnn, before)


def test_the_notebook_set_really_runs(user_cnn, digits_batch):
    """The refusal branch above must not swallow the analyzers a user is promised."""
    registered = {a.name for a in list_analyzers()}
    assert MUST_RUN <= registered
    r = wb.run("receptive_field", model=user_cnn, data=digits_batch[0][:4], device="cpu", n_images=4)
    assert r.figures() and r.checks
