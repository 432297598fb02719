"""`workbench sweep` on bad input: exit 2, one line on stderr, nothing run."""

from __future__ import annotations

import pytest

from workbench.cli import main

BASE = ["sweep", "lrp_pruning", "--model", "digits_vgg.sk", "--device", "cpu"]


@pytest.mark.parametrize("extra, needle", [
    (["--grid", "nope=1,2"], "unknown config key 'nope'"),
    (["--grid", "step=abc"], "step='abc' is not a valid float"),
    (["--grid", "step=1,500"], "above the maximum"),
    (["--grid", "criteria=lrp,bogus"], "is not one of"),
    (["--grid", "rates"], "is not key=v1,v2"),
    (["--seeds", "4-1"], "--seeds '4-1'"),
    (["--executor", "dask"], "unknown executor"),
    (["--workers", "0"], "--workers must be in"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, extra, needle):
    out = tmp_path / "out"
    assert main([*BASE, *extra, "--out", str(out)]) == 2 if extra[0] != "--workers" else True
    if extra[0] == "--workers":  # argparse's own error path
        with pytest.raises(SystemExit) as e:
            main([*BASE, *extra, "--out", str(out)])
        assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and needle in err[-1] and err[-1].startswith("workbench: error:")
    assert not (out / "cells").exists()


def test_an_unknown_model_exits_2(tmp_path, capsys):
    assert main(["sweep", "lrp_pruning", "--model", "nope.none", "--out", str(tmp_path / "o")]) == 2
    assert "unknown_id" in capsys.readouterr().err
