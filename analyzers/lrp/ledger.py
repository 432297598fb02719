"""One LRP pass with a conservation ledger: the relevance at every layer boundary, what each layer
absorbed (biases and stabilizers), the input relevance, and relevance that moved outside the ledger.

The books: ``logit = input relevance + sum over layers of absorbed + leak``. Each recorded module call
contributes ``absorbed = R_out - R_in`` (relevance reaching its output minus relevance it passed down),
so the leak is exactly the relevance created or destroyed by operations that are not modules with a
rule (an un-canonized residual ``a + b`` copies relevance into both branches, for instance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from analyzers._shared.lrp import applied, grads_or_zeros
from analyzers.lrp.books import Books, gaps
from workbench.core.result import Check

LEDGER_TOL = 1e-3  # |input + absorbed - logit| / |logit| at which the books count as closed
INPUT_SHARE_MIN = 0.1  # below this share of the logit, the map shows only a small remainder


def rule_names(composite, model: nn.Module) -> dict[str, str]:
    """Module name -> rule class name, exactly as ``composite.register`` assigns them (call it after
    the canonizers ran, so inserted ``Sum`` modules are included)."""
    ctx: dict = {}
    out = {}
    for name, module in model.named_modules():
        hook = composite.module_map(ctx, name, module)
        if hook is not None:
            out[name] = type(hook).__name__
    return out


def unmerged_batchnorms(model: nn.Module) -> list[str]:
    """BatchNorms that are not the identity (call inside the composite context, after canonizing)."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.affine:
            ident = (m.eps == 0 and bool((m.running_mean == 0).all()) and bool((m.running_var == 1).all())
                     and bool((m.weight == 1).all()) and bool((m.bias == 0).all()))
            if not ident:
                out.append(name)
    return out


def outermost(model: nn.Module, names: set[str]) -> list[str]:
    """The names in ``names`` none of whose ancestors is also in ``names`` (no double counting)."""
    keep = []
    for name, _ in model.named_modules():
        if name in names and not any(name.startswith(k + ".") for k in keep):
            keep.append(name)
    return keep


def boundary_modules(model: nn.Module, rules: dict[str, str]) -> list[str]:
    """Every module that has a rule or is a leaf, outermost first: together they cover the forward."""
    leaves = {n for n, m in model.named_modules() if n and not any(True for _ in m.children())}
    return outermost(model, leaves | {n for n in rules if n})


@dataclass
class Explanation:
    """One LRP pass over a batch of N inputs.

    ``relevance``: input relevance, same shape and dtype as the input. ``logits``: (N, K) of the
    canonized model. ``calls``: recorded module calls in forward order (L names; a module called twice
    appears twice), ``rules``: their zennit rule ("gradient" where none). ``r_out``/``r_in``/``gap``:
    float64 (L, N): relevance at the call's output, passed to its input, and reaching its output
    outside any recorded module (0 when every path is a module). ``unmerged``: BatchNorms left as
    non-identity after canonizing. ``target``: (N,) int64, the explained classes.
    """

    relevance: torch.Tensor
    logits: torch.Tensor
    target_logit: np.ndarray
    calls: list[str]
    rules: list[str]
    r_out: np.ndarray
    r_in: np.ndarray
    gap: np.ndarray
    unmerged: list[str]
    target: torch.Tensor | None = None

    @property
    def input_total(self) -> np.ndarray:
        """(N,) float64: the input relevance summed over every input element."""
        return self.relevance.detach().flatten(1).sum(1, dtype=torch.float64).cpu().numpy()

    @property
    def absorbed(self) -> np.ndarray:
        """(L, N) float64: relevance each call kept (bias + stabilizer share; negative = created)."""
        return self.r_out - self.r_in

    @property
    def leak(self) -> np.ndarray:
        """(N,) float64: logit - input - absorbed (relevance created/destroyed outside the ledger)."""
        return self.target_logit - self.input_total - self.absorbed.sum(0)


def explain(model: torch.nn.Module, composite, x: torch.Tensor,
            target: torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
            init: torch.Tensor | None = None) -> Explanation:
    """LRP of ``target`` (N,) int64 for ``x`` (N, ...) with ``composite`` applied to ``model`` (a private
    copy: canonizers change it in place and are reverted before returning, error or not). ``target`` may be
    a function of this pass's logits (N, K) -> (N,): the class is then chosen from the forward the pass makes
    anyway, not from a forward of its own.

    ``init``: (N,) initial relevance of the target logit; default the logit itself, so the books close
    against it. Runs in ``x``'s dtype."""
    with applied(composite, model):
        rules = rule_names(composite, model)
        unmerged = unmerged_batchnorms(model)
        names = boundary_modules(model, rules)
        xr = x.detach().clone().requires_grad_(True)
        with Books(model, names, x.shape[0]) as books:
            out = model(xr)
        out_index = books.index_of(out)  # the model output: its relevance is the initial one (no gap)
        n = out.shape[0]
        if callable(target):
            target = target(out.detach())
        picked = out.detach().gather(1, target[:, None])[:, 0]
        start = picked if init is None else init.to(out)
        r0 = torch.zeros_like(out).scatter_(1, target[:, None], start[:, None])
        try:
            grads = grads_or_zeros(out, [xr], r0)
        finally:
            books.close()
    k = len(books.calls)
    r_in, r_out = (np.stack(books.r_in), np.stack(books.r_out)) if k else (np.zeros((0, n)),) * 2
    gap = gaps(books, out_index) if k else np.zeros((0, n))
    return Explanation(relevance=grads[0].detach(), logits=out.detach(),
                       target_logit=start.detach().double().cpu().numpy(), calls=list(books.calls),
                       rules=[rules.get(c, "gradient") for c in books.calls], r_out=r_out, r_in=r_in, gap=gap,
                       unmerged=unmerged, target=target)


def ledger_metrics(exp: Explanation, logits: torch.Tensor) -> dict[str, float]:
    """Closure error (worst sample), absorbed and input shares (mean), the input error against the logit
    (worst), the logit change caused by canonizing, and the positive share of the input relevance.
    ``logits``: (M, K) of the model before canonization for the first M <= N samples (the ones checked)."""
    logit = exp.target_logit
    denom = np.maximum(np.abs(logit), 1e-12)
    sign = np.sign(logit)
    before = logits.detach().double()
    after = exp.logits[:before.shape[0]].double()
    change = float((after - before).abs().max() / before.abs().max().clamp_min(1e-12))
    rel = exp.relevance.detach().double().flatten(1)
    return {"conservation_rel_error": float(np.max(np.abs(exp.leak) / denom)),
            "bias_absorbed_fraction": float(np.mean(exp.absorbed.sum(0) / denom * sign)),
            "input_rel_error": float(np.max(np.abs(exp.input_total - logit) / denom)),
            "input_relevance_fraction": float(np.mean(exp.input_total / denom * sign)),
            "min_input_relevance_fraction": float(np.min(exp.input_total / denom * sign)),
            "canonization_output_change": change, "explained_logit": float(logit[0]),
            "positive_fraction": float(rel.clamp_min(0).sum() / rel.abs().sum().clamp_min(1e-30)),
            "ledger_layers": float(len(exp.calls))}


def ledger_checks(exp: Explanation, metrics: dict, problems: list[str], notes: list[str],
                  change_tol: float, checked: int = 0) -> list[Check]:
    """The books close; the model was canonized; canonizing kept the output; enough of the logit reaches
    the input. When the books do not close, one failed check per layer reached by relevance from outside
    the rules (at most 8, worst first)."""
    closure, share = metrics["conservation_rel_error"], metrics["min_input_relevance_fraction"]
    change = metrics["canonization_output_change"]
    checks = [Check("ledger_closes", closure <= LEDGER_TOL, closure, LEDGER_TOL,
                    "|input relevance + absorbed - logit| / |logit|, worst sample: the books close when no "
                    "relevance is created or lost outside the layer rules"),
              Check("canonized", not problems, float(len(problems)), 0.0,
                    "; ".join(problems) if problems else "; ".join(notes) or "nothing to canonize"),
              Check("canonization_keeps_output", change <= change_tol, change, change_tol,
                    "max |logit change| / max |logit| after merging BatchNorm and rewriting additions"
                    + (f" (checked on the first {checked} of {len(exp.target_logit)} samples: the check's budget)"
                       if checked and checked < len(exp.target_logit) else "")),
              Check("input_share", share >= INPUT_SHARE_MIN, share, INPUT_SHARE_MIN,
                    "share of the explained logit found at the input, worst sample: below the threshold biases "
                    "and stabilizers hold most of it (or, when negative, add relevance of the other sign), so "
                    "the map tells only part of the story")]
    if closure > LEDGER_TOL:
        worst = np.abs(exp.gap).max(1) / max(float(np.min(np.abs(exp.target_logit))), 1e-12)
        for i in np.argsort(-worst)[:8]:
            if worst[i] > LEDGER_TOL:
                checks.append(Check(f"layer:{exp.calls[i]}", False, float(worst[i]), LEDGER_TOL,
                                    "relevance reaches this layer's output through operations without an LRP "
                                    "rule (an un-canonized addition or gate next to it)"))
    return checks
