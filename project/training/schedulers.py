"""Learning-rate schedules, each `f(optimizer, max_epochs, steps_per_epoch, **options)` -> the
Lightning scheduler dict. Hydra configs (`conf/scheduler/*.yaml`) bind the options with
`_partial_: true`; the LightningModule supplies the run's length, so milestones given as
fractions keep their meaning when `trainer.max_epochs` changes.

Every schedule takes `warmup_epochs` (default 0): a linear warm-up of the lr over the first
steps (Goyal et al. 2017, "gradual warmup"), lr(step) = lr_schedule(step) · (step + 1) / W for
step < W = warmup_epochs · steps_per_epoch, then the schedule itself. To compose that exactly,
the epoch schedules are closed forms of the epoch evaluated at every step (one `LambdaLR`
stepped per batch): within epoch e the lr is the schedule's lr(e), as with an epoch scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch.optim import Optimizer, lr_scheduler


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: (step + 1) / warmup_steps for the first warmup_steps steps, then 1."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def _per_step(
    optimizer: Optimizer,
    steps_per_epoch: int,
    warmup_epochs: float,
    epoch_factor: Callable[[int, int], float],
) -> dict:
    """A per-batch LambdaLR: lr_g(step) = base_g · warmup(step) · epoch_factor(epoch, g)."""
    steps_per_epoch = max(1, int(steps_per_epoch))
    warmup_steps = round(warmup_epochs * steps_per_epoch)

    def lambda_for(group: int) -> Callable[[int], float]:
        return lambda step: (
            warmup_factor(step, warmup_steps) * epoch_factor(step // steps_per_epoch, group)
        )

    lambdas = [lambda_for(g) for g in range(len(optimizer.param_groups))]
    return {"scheduler": lr_scheduler.LambdaLR(optimizer, lambdas), "interval": "step"}


def milestone_epochs(milestones: Sequence[float], max_epochs: int) -> list[int]:
    """A milestone < 1 is a fraction of max_epochs, else an epoch number; epoch 0 is dropped (it
    would silently start training at the decayed lr)."""
    epochs = {int(round(m * max_epochs)) if m < 1 else int(m) for m in milestones}
    return sorted(e for e in epochs if e > 0)


def multistep(
    optimizer: Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
    warmup_epochs: float = 0.0,
) -> dict:
    """lr × gamma at each milestone (He et al. 2016: ÷10 at 50% and 75% of training)."""
    epochs = milestone_epochs(milestones, max_epochs)
    return _per_step(
        optimizer,
        steps_per_epoch,
        warmup_epochs,
        lambda e, _: gamma ** sum(e >= m for m in epochs),
    )


def step(
    optimizer: Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    decay_epochs: int = 50,
    decay: float = 0.1,
    warmup_epochs: float = 0.0,
) -> dict:
    """The ECE661 lab's schedule: lr × decay every decay_epochs epochs."""
    return _per_step(
        optimizer, steps_per_epoch, warmup_epochs, lambda e, _: decay ** (e // decay_epochs)
    )


def cosine(
    optimizer: Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    min_lr: float = 0.0,
    warmup_epochs: float = 0.0,
) -> dict:
    """Cosine annealing per epoch from the initial lr to min_lr over max_epochs (the closed form
    of torch's CosineAnnealingLR)."""
    base = [group["lr"] for group in optimizer.param_groups]
    t_max = max(1, max_epochs)

    def factor(e: int, g: int) -> float:
        floor = min_lr / base[g] if base[g] else 0.0
        return floor + (1 - floor) * (1 + math.cos(math.pi * min(e, t_max) / t_max)) / 2

    return _per_step(optimizer, steps_per_epoch, warmup_epochs, factor)


def onecycle(
    optimizer: Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    pct_start: float = 0.25,
    warmup_epochs: float = 0.0,
) -> dict:
    """One-cycle policy peaking at the optimiser's lr, stepped every batch. Its rising phase is
    its warm-up: `warmup_epochs` > 0 sets that phase's length (pct_start = warmup / max_epochs)."""
    if warmup_epochs > 0:
        pct_start = min(0.99, warmup_epochs / max(1, max_epochs))
    max_lr = [group["lr"] for group in optimizer.param_groups]
    scheduler = lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=max(1, max_epochs * steps_per_epoch),
        pct_start=pct_start,
    )
    return {"scheduler": scheduler, "interval": "step"}


def constant(
    optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.0
) -> dict:
    """No schedule: the lr stays as set (after the optional warm-up)."""
    return _per_step(optimizer, steps_per_epoch, warmup_epochs, lambda e, _: 1.0)
