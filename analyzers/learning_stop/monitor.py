"""The learning-stop monitor: forward hooks that record, every training step, the standard deviation
of each monitored layer's output (alpha_n^t = std(X_n^t) over all elements of the batch tensor,
unbiased, as in the authors' code), plus a side-by-side timing of its overhead.

Values stay on the model's device as 0-d tensors and are copied to the host once per epoch, so the
monitor adds one reduction per layer per step and no synchronisation.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from workbench.core.errors import ConfigError
from workbench.core.hooks import removable

LEAF_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_WIDE = (torch.float32, torch.float64)


def resolve_layers(module: nn.Module, spec: str, input_shape: tuple, card_layers: tuple[str, ...] = ()) -> list[str]:
    """Module names to monitor (duplicates dropped).

    ``spec``: "auto" = the output of each resolution stage (:func:`stage_outputs`, the paper's block
    outputs); "card" = the card's layers of interest; "conv_linear" = every Conv/Linear leaf;
    otherwise comma-separated module names. Raises ConfigError for a name that is not a module.
    """
    mods = dict(module.named_modules())
    leaves = [n for n, m in mods.items() if isinstance(m, LEAF_TYPES)]
    key = spec.strip()
    if key in ("", "auto"):
        names = stage_outputs(module, input_shape) or leaves
    elif key == "card":
        names = [n for n in card_layers if n in mods] or leaves
    elif key == "conv_linear":
        names = leaves
    else:
        names = [s.strip() for s in spec.split(",") if s.strip()]
        bad = [n for n in names if n not in mods or n == ""]
        if bad:
            raise ConfigError(f"layer {bad[0]!r} is not a module of this model",
                              f"e.g. {', '.join(leaves[:4])}, or auto / card / conv_linear")
    if not names:
        raise ConfigError("no layer to monitor", "name the layers to watch (comma-separated)")
    return list(dict.fromkeys(names))


class StdMonitor:
    """Context manager: ``with StdMonitor(module, names) as mon:`` hooks the named layers.

    While ``mon.active`` is True each forward call of a monitored layer stores std(output) (0-d
    float32 tensor on the device; a layer called twice in one step keeps the last call). After
    each step ``mon.collect()`` files the step's values; ``mon.drain()`` returns the steps since
    the last drain as numpy float64 (steps, L). Every hook is removed on exit, error or not.
    """

    def __init__(self, module: nn.Module, names: list[str]) -> None:
        self.module, self.names = module, list(names)
        self.active = False
        self._current: list[torch.Tensor | None] = [None] * len(names)
        self._steps: list[list[torch.Tensor]] = []
        self._handles: list = []
        self._ctx = None

    def _hook(self, i: int) -> Callable:
        def hook(_mod, _inp, out):
            if self.active:
                t = out[0] if isinstance(out, (tuple, list)) and out else out
                if isinstance(t, torch.Tensor):  # anything else records NaN (see collect)
                    t = t.detach()
                    self._current[i] = torch.std(t if t.dtype in _WIDE else t.float())
        return hook

    def __enter__(self) -> StdMonitor:
        self._ctx = removable(self._handles)
        self._ctx.__enter__()
        mods = dict(self.module.named_modules())
        try:
            for i, n in enumerate(self.names):
                self._handles.append(mods[n].register_forward_hook(self._hook(i)))
        except BaseException:
            self._ctx.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.active = False
        self._ctx.__exit__(*exc)

    def collect(self) -> None:
        """File the values of the step just run (no tensor op here: the stack happens in drain);
        a layer that did not run records NaN."""
        if any(v is None for v in self._current):
            self._current = [torch.tensor(float("nan")) if v is None else v for v in self._current]
        self._steps.append(self._current)
        self._current = [None] * len(self.names)

    def drain(self) -> torch.Tensor:
        """(steps, L) float64 on the CPU: the values filed since the last drain (one host copy)."""
        if not self._steps:
            return torch.zeros(0, len(self.names), dtype=torch.float64)
        flat = [v.to(self._steps[0][0].device) for row in self._steps for v in row]
        out = torch.stack(flat).double().cpu().reshape(len(self._steps), len(self.names))
        self._steps = []
        return out


def train_step(module: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               loss_fn: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on (x, y); returns (loss 0-d, logits (N, classes)), both detached."""
    logits = module(x)
    loss = loss_fn(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), logits.detach()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_overhead(module: nn.Module, make_opt: Callable, x: torch.Tensor, y: torch.Tensor,
                     names: list[str], pairs: int = 10, on_step: Callable[[float], None] | None = None) -> dict:
    """Training-step time with and without the monitor, same model copy and same batch.

    Steps alternate (without, with) so drift in machine load hits both alike; the first pair is a
    warm-up. ``module`` and the global random state are not touched (a deep copy trains). Returns
    seconds per step (medians), ``overhead_pct`` = 100 * (median over pairs of with / without - 1)
    and the raw times (s). ``on_step(fraction)`` is called after every pair (the runner's progress, which
    raises Cancelled once the run is cancelled: a large model's steps take seconds, so cancel acts here too).
    """
    model = copy.deepcopy(module).train()
    opt = make_opt(model)
    loss_fn = nn.CrossEntropyLoss()
    dev = x.device
    t_with, t_without = [], []
    # dropout in the timed steps must not shift the random stream of the training that follows
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), StdMonitor(model, names) as mon:
        for k in range(pairs + 1):
            for monitored in (False, True):
                mon.active = monitored
                _sync(dev)
                t0 = time.perf_counter()
                train_step(model, opt, x, y, loss_fn)
                if monitored:
                    mon.collect()
                _sync(dev)
                if k:
                    (t_with if monitored else t_without).append(time.perf_counter() - t0)
            if on_step is not None:
                on_step((k + 1) / (pairs + 1))
        mon.drain()
    ratio = statistics.median(a / b for a, b in zip(t_with, t_without, strict=True))
    return {"with_s": statistics.median(t_with), "without_s": statistics.median(t_without),
            "overhead_pct": 100.0 * (ratio - 1.0), "times_with": t_with, "times_without": t_without}


def stage_outputs(module: nn.Module, input_shape: tuple) -> list[str]:
    """The paper's monitored tensors, found by one probe forward: the output of each stage, i.e. the
    tensor fed to every convolution that works at a new resolution (after a pooling or a strided
    layer), plus the final feature map (the last (N, C, *S) output). When several modules return
    the same tensor (a block and its last child) the shallowest name that does not contain another
    pick is kept.

    DigitsVGG -> pool1, pool2, pool3; a ResNet -> stem, layer1, layer2, avgpool (the paper's
    ResNet choice); conv -> pool -> ReLU blocks -> every block. The probe runs in eval mode on 2 zero
    inputs, so BatchNorm running statistics are not touched.
    """
    produced: dict[int, list[str]] = {}
    convs: list[tuple[int, tuple]] = []  # (id of the input tensor, output spatial size) per conv call
    maps: list[int] = []
    keep: list[torch.Tensor] = []  # holds every tensor seen so no id() is reused during the probe
    handles: list = []

    def rec(name, is_conv):
        def hook(_m, inp, out):
            if not isinstance(out, torch.Tensor):
                return
            keep.append(out)
            produced.setdefault(id(out), []).append(name)
            if out.dim() >= 3:
                maps.append(id(out))
            if is_conv and inp and isinstance(inp[0], torch.Tensor):
                keep.append(inp[0])
                convs.append((id(inp[0]), tuple(out.shape[2:])))
        return hook

    was_training = module.training
    with removable(handles):
        for n, m in module.named_modules():
            if n:
                handles.append(m.register_forward_hook(rec(n, isinstance(m, LEAF_TYPES[:3]))))
        module.eval()
        try:
            with torch.no_grad():
                p = next(module.parameters(), None)
                module(torch.zeros(2, *input_shape, device=p.device if p is not None else "cpu"))
        finally:
            module.train(was_training)
    ids, prev = [], None
    for src, size in convs:
        if prev is not None and size != prev and src in produced:
            ids.append(src)
        prev = size
    if maps:
        ids.append(maps[-1])
    ranked = [sorted(produced[i], key=lambda n: (n.count("."), produced[i].index(n))) for i in dict.fromkeys(ids)]
    names = [r[0] for r in ranked]
    for k, r in enumerate(ranked):  # "features" holding "features.pool1" reads as the whole stack
        others = names[:k] + names[k + 1:]
        names[k] = next((n for n in r if not any(o.startswith(n + ".") for o in others)), r[-1])
    return names
