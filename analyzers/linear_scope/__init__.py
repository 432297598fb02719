"""LinearScope: a CNN frozen at its input x0 is an affine map y = A(x0) x + c(x0) (the linear interpreter)."""

from analyzers.linear_scope.analyzer import LinearScope

__all__ = ["LinearScope"]
