"""Model size and cost in two conventions (ALGORITHMS.md §2.1, §5.4).

* ``gmacs``: true multiply-accumulates of the convolutions, transposed convolutions and linear
  layers for one image (1e9 units). Attention matmuls, norms and elementwise ops are excluded,
  as in the published true counts (46.20 G for HigherHRNet-W32-512, about 55.6 G for the fusion).
* ``gflops_paper``: the official HigherHRNet ``get_model_summary`` figure that the papers print:
  for every Conv-type module ``weight.numel() * output h * w`` (for a stride-2 transposed conv 4x
  the true count), for every ``nn.Linear`` ``output.numel() * input.size(1)`` (on (B, N, C)
  tokens that is the token count N, not the input features: the fusion model's 330.5 G).

Counting runs the model on the meta device (shapes only, no arithmetic), about a second per
model; results are cached per process, and the registered models' costs are also stored in
``bupose/resources/model_costs.json`` (``write_cost_cache``) so that ``bupose models`` is
instant.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ModelCost:
    """params: trainable parameter count; gmacs / gflops_paper: see the module docstring."""

    params: int
    gmacs: float
    gflops_paper: float


def _true_macs(module: nn.Module, inp: Tensor, out: Tensor) -> int:
    """Multiply-accumulates of one call (the input is a single image)."""
    if isinstance(module, nn.ConvTranspose2d):
        # every input pixel scatters a (out/groups) x k x k patch
        k = math.prod(module.kernel_size)
        return inp.numel() * (module.out_channels // module.groups) * k
    if isinstance(module, nn.Conv2d):
        return out.numel() * module.weight[0].numel()
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    return 0


def _paper_macs(module: nn.Module, inp: Tensor, out: Tensor) -> int:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return module.weight.numel() * math.prod(out.shape[2:])
    if isinstance(module, nn.Linear):
        return out.numel() * inp.shape[1]
    return 0


def count_cost(model: nn.Module, input_size: int | tuple[int, int]) -> ModelCost:
    """Parameters and MACs of ``model`` for one (1, 3, H, W) image.

    Args:
        model: any module; it is moved to nothing: a meta-device copy is made when the model
            lives on a real device (so the caller's weights are untouched).
        input_size: S (square) or (H, W).
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    params = sum(p.numel() for p in model.parameters())
    true_total, paper_total = 0, 0

    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        nonlocal true_total, paper_total
        inp = args[0]
        true_total += _true_macs(module, inp, out)
        paper_total += _paper_macs(module, inp, out)

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    device = next(model.parameters()).device
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return ModelCost(params, true_total / 1e9, paper_total / 1e9)


# Costs of the registered models at their own input size and K, so that `bupose models` needs
# no forward passes (hourglass-104 and the CAL models take seconds on the meta device). An
# entry is used only while its fingerprint (defaults, input size, builder) matches the
# registry; tests/models/test_flops.py checks the numbers; refresh with write_cost_cache().
# Also read, without importing torch, by ``bupose models`` (cli/models_cmd.py).
COST_CACHE = Path(__file__).resolve().parents[1] / "resources" / "model_costs.json"


def _fingerprint(name: str) -> str:
    from bupose.models import MODELS

    entry = MODELS.get(name)
    return json.dumps({"defaults": entry.defaults, "input_size": entry.input_size,
                       "builder": entry.builder.__qualname__}, sort_keys=True, default=str)


def table_fields(name: str) -> dict[str, Any]:
    """The registry's listing fields of a model, as ``bupose models`` prints them: input_size
    (S, or [h, w] for top-down models), family, description."""
    from bupose.models import MODELS

    entry = MODELS.get(name)
    size = entry.input_size
    return {"input_size": list(size) if isinstance(size, tuple) else size,
            "family": entry.family, "description": entry.description}


@functools.cache
def _cached_costs() -> dict[str, Any]:
    try:
        return dict(json.loads(COST_CACHE.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def compute_registered_cost(name: str, input_size: int | tuple[int, int] | None = None,
                            num_keypoints: int | None = None) -> ModelCost:
    """``count_cost`` of a registered model built on the meta device (never cached)."""
    from bupose.models import MODELS

    entry = MODELS.get(name)
    kwargs = {} if num_keypoints is None else {"num_keypoints": num_keypoints}
    with torch.device("meta"):
        model = entry.build(**kwargs)
    return count_cost(model, input_size or entry.input_size)


@functools.cache
def registered_cost(name: str, input_size: int | tuple[int, int] | None = None,
                    num_keypoints: int | None = None) -> ModelCost:
    """``count_cost`` of a registered model (cached per process; at the entry's own input
    size and K also read from ``COST_CACHE`` when its fingerprint is current).

    ``num_keypoints`` None: the entry's own K (17, MPII models 16); ``input_size`` None: the
    entry's (S or (h, w))."""
    if input_size is None and num_keypoints is None:
        hit = _cached_costs().get(name)
        if hit is not None and hit.get("fingerprint") == _fingerprint(name):
            return ModelCost(int(hit["params"]), float(hit["gmacs"]),
                             float(hit["gflops_paper"]))
    return compute_registered_cost(name, input_size, num_keypoints)


def write_cost_cache(path: Path = COST_CACHE) -> dict[str, Any]:
    """Recompute every registered model's cost and write ``path`` (atomically)."""
    from bupose.models import MODELS
    from bupose.utils.io import atomic_write_bytes

    table = {}
    for name in MODELS.names():
        cost = compute_registered_cost(name)
        table[name] = {**table_fields(name), "params": cost.params, "gmacs": cost.gmacs,
                       "gflops_paper": cost.gflops_paper, "fingerprint": _fingerprint(name)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(table, indent=1) + "\n").encode())
    _cached_costs.cache_clear()
    registered_cost.cache_clear()
    return table
