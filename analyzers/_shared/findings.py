"""What an analyzer's pieces add to its Result, gathered in one object instead of four dicts passed
through every helper (metrics, checks, arrays, info)."""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.core import Check


@dataclass
class Findings:
    """``metrics``: name -> float; ``checks``: list of :class:`Check`; ``arrays``: name -> numpy array
    (or tensor moved to numpy by the Result); ``info``: name -> JSON-able value."""

    metrics: dict = field(default_factory=dict)
    checks: list = field(default_factory=list)
    arrays: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def check(self, name: str, passed: bool, value: float, threshold: float, message: str) -> Check:
        c = Check(name, bool(passed), value, threshold, message)
        self.checks.append(c)
        return c

    def merge(self, other: Findings) -> Findings:
        """Add ``other``'s entries (later entries win on equal names); returns self."""
        self.metrics.update(other.metrics)
        self.checks += other.checks
        self.arrays.update(other.arrays)
        self.info.update(other.info)
        return self

    def result(self, cls: type, name: str):
        """An instance of the Result subclass ``cls`` for analyzer ``name`` holding these findings."""
        return cls(name, metrics=self.metrics, checks=self.checks, arrays=self.arrays, info=self.info)
