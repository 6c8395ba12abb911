"""Learning-rate schedule as a pure function of the optimiser step.

Being a function (not a stateful scheduler object) makes resuming exact by construction: the
learning rate of step ``s`` depends only on ``s`` and the recipe.
"""

from __future__ import annotations

import bisect
import math

from bupose.config import OptimCfg


def lr_at(
    step: int, steps_per_epoch: int, total_epochs: int, optim: OptimCfg, base_lr: float
) -> float:
    """Learning rate for optimiser step ``step`` (0-based).

    Args:
        step: optimiser steps already taken.
        steps_per_epoch: optimiser steps per epoch (>= 1).
        total_epochs: length of training in epochs (for "cosine").
        optim: schedule kind, milestones (``lr_steps``, in epochs), decay factor and warm-up.
        base_lr: the learning rate after warm-up and before any decay.

    The multistep decay follows ``torch.optim.lr_scheduler.MultiStepLR`` stepped once per epoch
    (epoch e uses ``lr_factor ** #{m in lr_steps: m <= e}``); the warm-up is linear from
    ``warmup_ratio * lr`` at step 0 to the scheduled lr at ``warmup_iters`` (mmcv's "linear").
    """
    steps_per_epoch = max(1, steps_per_epoch)
    epoch = step // steps_per_epoch
    if optim.schedule == "multistep":
        factor = optim.lr_factor ** bisect.bisect_right(sorted(optim.lr_steps), epoch)
    elif optim.schedule == "offsetguided":
        factor = offsetguided_factor(epoch)
    elif optim.schedule == "cosine":
        total = max(1, total_epochs * steps_per_epoch)
        factor = 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    else:
        factor = 1.0
    if step < optim.warmup_iters:
        progress = step / optim.warmup_iters
        factor *= optim.warmup_ratio + (1.0 - optim.warmup_ratio) * progress
    return base_lr * factor


def offsetguided_factor(epoch: int) -> float:
    """The OffsetGuided step schedule (``utils.util.adjust_learning_rate``, ALGORITHMS.md §4.6)
    as a factor of the base lr: 1 before epoch 60, 0.2^((e-60)//5) from 60, back to 1 for
    78 <= e < 92, 0.1 for 92 <= e < 105, 0.01 for 105 <= e < 110, then 0.2^((e-60)//5) again."""
    if epoch < 60 or 78 <= epoch < 92:
        return 1.0
    if 92 <= epoch < 105:
        return 0.1
    if 105 <= epoch < 110:
        return 0.01
    return 0.2 ** ((epoch - 60) // 5)


def effective_base_lr(optim: OptimCfg, global_batch: int) -> float:
    """``optim.lr``, scaled linearly by ``global_batch / reference_batch`` when asked to.

    ``global_batch`` = images per optimiser step over all processes (batch · world · accumulate).
    """
    if optim.scale_lr_with_batch and optim.reference_batch > 0:
        return optim.lr * global_batch / optim.reference_batch
    return optim.lr
