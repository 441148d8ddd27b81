"""Lightning callbacks of the training loop."""

from __future__ import annotations

import math
import time

import lightning as L
import torch


class StopOnDivergence(L.Callback):
    """Stop the run at the first non-finite training loss and remember the epoch.

    A diverged run (e.g. the lab's lr = 1.0) is a result, not a crash: `project.train` records
    `status: "diverged"` and the epoch in results.json, and a sweep goes on with its other runs.
    """

    def __init__(self):
        self.diverged_epoch: int | None = None
        self.diverged_step: int | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or math.isfinite(float(loss.detach())):
            return
        if self.diverged_epoch is None:
            self.diverged_epoch = trainer.current_epoch
            self.diverged_step = trainer.global_step
            print(
                f"\n[normres] training loss became {float(loss)} at epoch {trainer.current_epoch}"
                f" (step {trainer.global_step}): the run diverged; stopping it.",
                flush=True,
            )
        trainer.should_stop = True

    def state_dict(self) -> dict:
        return {"diverged_epoch": self.diverged_epoch, "diverged_step": self.diverged_step}

    def load_state_dict(self, state_dict: dict) -> None:
        self.diverged_epoch = state_dict.get("diverged_epoch")
        self.diverged_step = state_dict.get("diverged_step")


class EpochTimer(L.Callback):
    """Log each training epoch's wall time (`time/epoch_s`) and throughput (`time/img_per_s`).

    Speed is a result users compare across norms and devices. The clock stops when the epoch's
    last batch is done (validation, which Lightning runs inside the epoch, is not counted) and waits
    for queued GPU work (`torch.cuda.synchronize`) so asynchronous kernels are not left out.

    Kept rather than Lightning's own: `Timer` measures whole stages (fit, validate), not epochs,
    and `ThroughputMonitor` logs rolling per-step rates that include validation pauses; the
    reports compare the training time of each epoch.
    """

    def __init__(self):
        self._start = self._stop = None
        self._images = 0

    @staticmethod
    def _now(pl_module) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._images, self._stop = 0, None
        self._start = self._now(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._images += len(batch[1])

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit" and self._start is not None and self._stop is None:
            self._stop = self._now(pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._start is None:
            return
        seconds = (self._stop or self._now(pl_module)) - self._start
        pl_module.log("time/epoch_s", seconds, on_epoch=True)
        pl_module.log("time/img_per_s", self._images / max(seconds, 1e-9), on_epoch=True)
