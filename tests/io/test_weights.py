import os
import pickle

import pytest
import torch
from safetensors.torch import save

from workbench.core.errors import InputTooLargeError, WeightsError
from workbench.io.weights import (
    load_pinned_checkpoint,
    load_user_safetensors,
    refuse_unsafe_environment,
    sha256_file,
)


def _ref():
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    return m.state_dict()


def test_matching_safetensors_load_and_upcast():
    ref = _ref()
    data = save({k: (v.half() if v.is_floating_point() else v) for k, v in ref.items()})
    out = load_user_safetensors(data, ref)
    assert set(out) == set(ref) and out["0.weight"].dtype == torch.float32


@pytest.mark.parametrize("mutate, word", [
    (lambda d: d.pop("0.bias"), "missing"),
    (lambda d: d.update(extra=torch.zeros(1)), "unexpected"),
    (lambda d: d.update({"0.weight": torch.zeros(2, 1, 5, 5)}), "shape"),
    (lambda d: d.update({"0.weight": torch.zeros(2, 1, 3, 3, dtype=torch.float64)}), "dtype"),
    (lambda d: d.update({"0.weight": torch.full((2, 1, 3, 3), float("nan"))}), "NaN"),
])
def test_mismatching_safetensors_are_refused(mutate, word):
    d = dict(_ref())
    mutate(d)
    with pytest.raises(WeightsError) as e:
        load_user_safetensors(save(d), _ref())
    assert word in e.value.one_line()


def test_oversized_headers_and_garbage_are_refused():
    with pytest.raises(InputTooLargeError):
        load_user_safetensors((10 ** 9).to_bytes(8, "little") + b"{}", _ref())
    for bad in (b"", b"\x05\0\0\0\0\0\0\0{not", pickle.dumps({"a": 1})):
        with pytest.raises((WeightsError, InputTooLargeError)):
            load_user_safetensors(bad, _ref())


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/workbench_pwned",))


def test_pinned_checkpoint_refuses_wrong_sha_and_pickled_code(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(2)}, good)
    assert torch.equal(load_pinned_checkpoint(good, sha256_file(good))["w"], torch.ones(2))
    with pytest.raises(WeightsError):
        load_pinned_checkpoint(good, "0" * 64)
    evil = tmp_path / "evil.pt"
    torch.save({"w": _Evil()}, evil)
    with pytest.raises(WeightsError):
        load_pinned_checkpoint(evil, sha256_file(evil))  # the sha matches, the unpickler still refuses
    assert not os.path.exists("/tmp/workbench_pwned")


def test_unsafe_environment_is_refused(monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(WeightsError):
        refuse_unsafe_environment()
