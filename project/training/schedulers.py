"""Learning-rate schedules, each `f(optimizer, max_epochs, steps_per_epoch, **options)` -> the
Lightning scheduler dict. Hydra configs (`conf/scheduler/*.yaml`) bind the options with
`_partial_: true`; the LightningModule supplies the run's length, so milestones given as
fractions keep their meaning when `trainer.max_epochs` changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.optim import Optimizer, lr_scheduler


def _epochwise(scheduler) -> dict:
    return {"scheduler": scheduler, "interval": "epoch"}


def multistep(
    optimizer: Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
) -> dict:
    """lr × gamma at each milestone; a milestone < 1 is a fraction of max_epochs, else an epoch."""
    epochs = {int(round(m * max_epochs)) if m < 1 else int(m) for m in milestones}
    # A milestone at epoch 0 would silently start training at the decayed lr (short runs).
    epochs = sorted(e for e in epochs if e > 0)
    return _epochwise(lr_scheduler.MultiStepLR(optimizer, milestones=epochs, gamma=gamma))


def step(
    optimizer: Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    decay_epochs: int = 50,
    decay: float = 0.1,
) -> dict:
    """The ECE661 lab's schedule: lr × decay every decay_epochs epochs."""
    return _epochwise(lr_scheduler.StepLR(optimizer, step_size=decay_epochs, gamma=decay))


def cosine(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, min_lr: float = 0.0):
    """Cosine annealing from the initial lr to min_lr over max_epochs."""
    return _epochwise(
        lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, max_epochs), eta_min=min_lr)
    )


def onecycle(
    optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, pct_start: float = 0.25
) -> dict:
    """One-cycle policy peaking at the optimiser's lr, stepped every batch."""
    max_lr = [group["lr"] for group in optimizer.param_groups]
    scheduler = lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=max(1, max_epochs * steps_per_epoch),
        pct_start=pct_start,
    )
    return {"scheduler": scheduler, "interval": "step"}


def constant(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int) -> dict:
    """No schedule: the lr stays as set."""
    return _epochwise(lr_scheduler.LambdaLR(optimizer, lambda _: 1.0))
