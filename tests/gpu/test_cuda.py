"""Runs only where CUDA is present (the GPU machine): the runtime picks it and results agree with CPU."""

import numpy as np
import pytest
import torch

from workbench.runtime import RunSpec, pick_device, run

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]


def test_auto_picks_cuda():
    assert pick_device("auto") == "cuda"


@pytest.mark.zoo("digits_vgg.sk")
def test_attribution_on_cuda_matches_cpu():
    cfg = {"method": "integrated_gradients,grad_cam", "sanity_check": "false"}
    gpu = run(RunSpec("attribution", "digits_vgg.sk", "digits:test:8", cfg, device="auto"))
    cpu = run(RunSpec("attribution", "digits_vgg.sk", "digits:test:8", cfg, device="cpu"))
    assert gpu.provenance.device == "cuda" and gpu.metrics["completeness_gap"] < 0.01
    for m in ("integrated_gradients", "grad_cam"):
        a, b = gpu.arrays[f"attr_{m}"], cpu.arrays[f"attr_{m}"]
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
