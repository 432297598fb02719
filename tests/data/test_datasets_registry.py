"""The data-set registry: sets registered by decorator or entry point, model kinds, the shared
selector grammar (splits, ranges, lists) and the built-in sets behind it."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.core.errors import DataError, InputTooLargeError, UnknownIdError
from workbench.core.sample import Sample
from workbench.data import (
                            Dataset,
                            dataset_arrays,
                            datasets_for,
                            get_samples,
                            list_datasets,
                            list_items,
                            list_sets,
                            register_dataset,
                            resolve,
)
from workbench.data import registry as reg


@pytest.fixture
def tiny_set():
    @register_dataset
    class Tiny(Dataset):
        name, kind, size, classes = "test_tiny.points", "vector", 10, 2
        model_kinds = ("vector",)
        splits, default_split = ("train", "test"), "test"
        about = "ten planted points"

        def items(self, split: str = "") -> list[str]:
            idx = {"train": range(6), "test": range(6, 10)}.get(split, range(10))
            return [f"{self.name}:{i}" for i in idx]

        def get(self, sample_id: str) -> Sample:
            i = int(sample_id.rsplit(":", 1)[1])
            return Sample(sample_id, "vector", np.array([i, -i], np.float32), i % 2, str(i % 2), self.name)

    yield Tiny
    reg._DATASETS.pop(Tiny.name, None)


def test_a_set_registered_by_decorator_is_offered_for_its_model_kinds(tiny_set):
    assert "test_tiny.points" in datasets_for("vector")
    assert "test_tiny.points" not in datasets_for("image2d")
    assert any(d["name"] == "test_tiny.points" and d["splits"] == ["train", "test"] for d in list_datasets())
    assert list_items("test_tiny.points", 2) == ["test_tiny.points:6", "test_tiny.points:7"]
    assert list_sets("test_tiny.points") == ["test_tiny.points:train", "test_tiny.points:test"]


def test_the_shared_selector_grammar(tiny_set):
    ids = lambda data_id: [s.id.rsplit(":", 1)[1] for s in get_samples(data_id)]  # noqa: E731
    assert ids("test_tiny.points") == ["6", "7", "8", "9"]  # the default split
    assert ids("test_tiny.points:train") == [str(i) for i in range(6)]
    assert ids("test_tiny.points:train:2") == ["0", "1"]
    assert ids("test_tiny.points:test:1-2") == ["7", "8"]
    assert ids("test_tiny.points:all") == [str(i) for i in range(10)]
    assert ids("test_tiny.points:3") == ["3"] and ids("test_tiny.points:3,5") == ["3", "5"]
    assert ids("test_tiny.points:0-9") == [str(i) for i in range(10)]
    for bad in ("test_tiny.points:10", "test_tiny.points:5-2", "test_tiny.points:x", "test_tiny.points:test:4-4"):
        with pytest.raises(DataError):
            get_samples(bad)
    with pytest.raises(DataError, match="selects no samples .* first N"):  # split:0 is "first 0", not index 0
        get_samples("test_tiny.points:train:0")


def test_registry_refuses_bad_definitions_and_mismatched_entry_points(tiny_set):
    class NoKind(Dataset):
        name = "nokind"

    with pytest.raises(TypeError, match="kind"):
        register_dataset(NoKind)

    class Other(Dataset):
        name, kind = "test_tiny.points", "image"

    with pytest.raises(TypeError, match="already registered"):
        register_dataset(Other)
    with pytest.raises(TypeError, match="must be equal"):
        reg._register_entry_point("another_name", tiny_set)
    with pytest.raises(TypeError, match="Dataset subclass"):
        reg._register_entry_point("x", object)
    with pytest.raises(UnknownIdError):
        get_samples("no_such_set:1")


def test_builtin_sets_and_split_ids():
    assert datasets_for("image2d") == ["digits", "emotiv.ica", "skimage"]
    assert datasets_for("eeg") == ["eeg_synth.drowsy", "emotiv"]
    assert datasets_for("signal1d") == ["mnist1d", "tones"] and datasets_for("signal1d", (1, 40)) == ["mnist1d"]
    assert set(datasets_for("vector")) == {"moons", "circles"}
    test = get_samples("digits:test")
    assert len(test) == 450 and [s.id for s in test] == [s.id for s in get_samples("digits:test:0-449")]
    assert [s.id for s in test[:16]] == [s.id for s in get_samples("digits:test:16")]
    x, y = dataset_arrays("digits", "test")
    assert np.array_equal(np.stack([s.array for s in test]), x) and [s.label for s in test] == y.tolist()
    assert get_samples("skimage:chelsea")[0].array.shape[-1] == 3
    with pytest.raises(UnknownIdError, match="skimage picture"):
        get_samples("skimage:nope")
    assert len(get_samples("eeg_synth.drowsy")) == 96 and len(get_samples("eeg_synth.drowsy:test:0-9")) == 10
    assert {s.meta["subject"] for s in get_samples("eeg_synth.drowsy:subject:9")} == {9}
    assert len(get_samples("moons:test")) == 500 and get_samples("mnist1d:3")[0].array.shape == (1, 40)


def test_resolve_names_samples_without_decoding_and_bounds_the_count(monkeypatch):
    ds, ids = resolve("digits:train")
    assert len(ids) == 1347 and ds.name == "digits"
    monkeypatch.setattr(reg, "MAX_SELECTED", 100)
    with pytest.raises(InputTooLargeError):
        resolve("digits:0-500")
