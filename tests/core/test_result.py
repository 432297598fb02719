import json

import numpy as np
import pytest

from workbench.core.errors import DataError
from workbench.core.result import Check, Provenance, Result


def _result():
    return Result("attribution", "m.x", "digits:0", {"a": 1},
                  metrics={"gap": 0.001, "bad": float("nan")},
                  checks=[Check("c", False, float("inf"), 0.5, "msg")],
                  arrays={"x": np.arange(12, dtype=np.float32).reshape(3, 4), "i": np.array([1, 2])},
                  info={"names": ["<b>"]}, provenance=Provenance(model_id="m.x", seed=3))


def test_save_load_round_trip_is_exact_without_pickle(tmp_path):
    r = _result()
    r.save(tmp_path)
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["metrics"]["bad"] == "nan" and doc["checks"][0]["value"] == "inf"
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["i", "x"]
    back = Result.load(tmp_path)
    assert type(back).__name__ == "AttributionResult"  # the analyzer's own class comes back
    assert np.isnan(back.metrics["bad"]) and back.metrics["gap"] == 0.001
    assert back.checks[0].value == float("inf") and back.checks[0].passed is False
    assert back.arrays["x"].dtype == np.float32 and np.array_equal(back.arrays["x"], r.arrays["x"])
    assert back.provenance.seed == 3 and back.info == r.info and back.config == r.config


def test_arrays_are_read_only_and_nonfinite_counted():
    r = _result()
    with pytest.raises(ValueError):
        r.arrays["x"][0, 0] = 1
    r.set_array("y", np.array([np.nan, 1.0, np.inf]))
    assert r.nonfinite_count() == 2


def test_load_of_a_missing_or_corrupt_folder_is_a_typed_error(tmp_path):
    with pytest.raises(DataError):
        Result.load(tmp_path)
    (tmp_path / "result.json").write_text("{not json")
    with pytest.raises(DataError):
        Result.load(tmp_path)


def test_load_finds_the_analyzers_result_class_in_a_fresh_process(tmp_path):
    """No import side effect needed: Result.load imports the analyzer's entry point itself."""
    import subprocess
    import sys

    _result().save(tmp_path)
    code = ("import sys; from workbench.core.result import Result; r = Result.load(sys.argv[1]); "
            "print(type(r).__name__, r.model_artifact())")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["AttributionResult", "None"]


def test_every_builtin_result_class_loads_without_torch():
    """The ``workbench.results`` entry points name result modules that never import torch, so a saved
    result reads back with its own figures on a machine (or process) without torch."""
    import subprocess
    import sys
    from importlib.metadata import entry_points

    names = sorted(ep.name for ep in entry_points(group="workbench.results"))
    assert {"attribution", "lrp", "receptive_field"} <= set(names)
    code = ("import sys; sys.modules['torch'] = None\n"
            "from workbench.core.result import Result, _result_class\n"
            f"for n in {names!r}:\n"
            "    k = _result_class(n)\n"
            "    assert k is not Result and k.__name__.endswith('Result'), (n, k)\n"
            "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None]\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
