"""Grid parsing, expansion and the content hash of a cell."""

from __future__ import annotations

import pytest
from sweep_helpers import MODEL, tiny_spec

from workbench.core.analyzer import get_analyzer
from workbench.core.errors import ConfigError
from workbench.sweep.grid import (
    SweepSpec,
    cell_key,
    code_hash,
    expand,
    library_versions,
    parse_grid,
    parse_seeds,
)

WEIGHTS = {MODEL: "ab" * 32}


def _cells(spec: SweepSpec, weights=None):
    return expand(spec, weights or WEIGHTS, {MODEL: "digits:0"}, "cpu")


def test_seeds_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2") == [0, 2]
    assert parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    for bad in ("", "3-1", "-1", "a", "0-", "1.5"):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


def test_grid_values_are_typed_and_checked_by_the_config_fields():
    grid = parse_grid("lrp_pruning", ["step=1,2.5", "finetune=true,no", "criteria=lrp,weight", "rates=10,30"])
    assert grid == {"step": [1.0, 2.5], "finetune": [True, False], "criteria": ["lrp", "weight"],
                    "rates": ["10", "30"]}
    assert all(isinstance(v, float) for v in grid["step"])
    for bad in (["nope=1"], ["step=abc"], ["step=500"], ["criteria=lrp,nope"], ["rates"], ["=1"]):
        with pytest.raises(ConfigError):
            parse_grid("lrp_pruning", bad)
    with pytest.raises(ConfigError, match="both fixed and swept"):
        parse_grid("lrp_pruning", ["step=1"], {"step": "2"})


def test_expansion_is_the_full_product_with_seeds_innermost():
    cells = _cells(tiny_spec(seeds=(0, 1, 2), rates=("10", "20", "30")))
    assert len(cells) == 2 * 3 * 3
    assert [c.seed for c in cells[:3]] == [0, 1, 2]
    assert cells[0].params == {"criteria": "weight", "rates": "10"}
    assert cells[-1].params == {"criteria": "random", "rates": "30"}
    assert all(c.config["reference_per_class"] == 3 and c.config["criteria"] == c.params["criteria"] for c in cells)
    assert len({c.key for c in cells}) == len(cells)


def test_cell_key_depends_on_content_only():
    base = _cells(tiny_spec())
    again = _cells(tiny_spec())
    assert [c.key for c in base] == [c.key for c in again]
    # the same value spelled differently is the same cell (values are parsed before hashing)
    spelled = tiny_spec()
    spelled.fixed = {"reference_per_class": 3, "step": "5.0"}
    assert [c.key for c in _cells(spelled)] == [c.key for c in base]
    # every input of the key changes it
    other_weights = _cells(tiny_spec(), {MODEL: "cd" * 32})
    assert not {c.key for c in other_weights} & {c.key for c in base}
    c = base[0]
    versions = {**library_versions(("zennit",)), "analyzer_code": code_hash(get_analyzer("lrp_pruning"))}
    k = cell_key("lrp_pruning", c, WEIGHTS[MODEL], versions, "cpu", 1)
    assert k == c.key and len(k) == 32
    assert cell_key("lrp_pruning", c, WEIGHTS[MODEL], {**versions, "torch": "0.0"}, "cpu", 1) != k
    assert cell_key("lrp_pruning", c, WEIGHTS[MODEL], versions, "cuda", 1) != k
    assert cell_key("lrp_pruning", c, WEIGHTS[MODEL], versions, "cpu", 2) != k
    assert cell_key("lrp", c, WEIGHTS[MODEL], versions, "cpu", 1) != k


def test_a_huge_or_empty_grid_is_refused_before_running():
    with pytest.raises(ConfigError, match="no cells"):
        _cells(tiny_spec(seeds=()))
    with pytest.raises(ConfigError, match="more than"):
        _cells(tiny_spec(seeds=range(60_000)))


def test_code_hash_follows_the_analyzer_source(tmp_path, monkeypatch):
    import importlib

    pkg = tmp_path / "wb_tmp_analyzer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("class A:\n    pass\n")
    (pkg / "helper.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = importlib.import_module("wb_tmp_analyzer").A
    before = code_hash(cls)
    assert len(before) == 16 and code_hash(cls) == before
    (pkg / "helper.py").write_text("X = 2\n")  # any file of the package counts
    assert code_hash(cls) != before
