"""LinearScope: a CNN frozen at its input x0 is an affine map y = A(x0) x + c(x0) (the linear interpreter).

Exports ``LinearScope`` (the analyzer) and ``LinearScopeResult``, both loaded on first use: reading a
saved result (``Result.load``, through the ``workbench.results`` entry point
``analyzers.linear_scope.result:LinearScopeResult``) imports the result module only, never torch.
"""

from importlib import import_module

__all__ = ["LinearScope", "LinearScopeResult"]
_WHERE = {"LinearScope": "analyzer", "LinearScopeResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
