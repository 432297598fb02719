"""Kernel spectra: conv-operator singular values (FFT method), filter frequency responses, weight ESD
diagnostics (WeightWatcher conventions), the empirical NTK spectrum, and the seed paper's locality
experiment (kernel regression with the NTK of a hierarchical 1-D CNN).

Exports ``KernelSpectra`` (the analyzer) and ``KernelSpectraResult``, both loaded on first use: reading a
saved result (``Result.load``, through the ``workbench.results`` entry point
``analyzers.kernel_spectra.result:KernelSpectraResult``) imports the result module only, never torch.
"""

from importlib import import_module

__all__ = ["KernelSpectra", "KernelSpectraResult"]
_WHERE = {"KernelSpectra": "analyzer", "KernelSpectraResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
