"""The LightningModule: cross-entropy training of any project model, metrics per stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor, nn

from project.models.factory import build_model
from project.nn import BatchInstanceNorm2d, apply_constraints_
from project.training.compiling import compile_mode
from project.training.metrics import classification_metrics, feature_quantiles
from project.training.optim import param_groups


def l1_penalty(model: nn.Module) -> Tensor:
    """Σ|w| over the conv and linear weights (tensors with ≥ 2 dims; not norms or biases)."""
    return sum(p.abs().sum() for p in model.parameters() if p.dim() > 1)


class ImageClassifier(L.LightningModule):
    """Trains `build_model(model, norm, num_classes)` with cross-entropy.

    Everything needed to rebuild the network (model and norm configs, classes, the data's
    normalisation statistics `data_stats`, passed in by the caller) is saved as hyperparameters,
    so a checkpoint alone is enough for `project.evaluate` and `project.export`.

    Logged: `train/loss` per step and epoch; `{train,val}/{loss,acc,f1_micro,f1_macro}` per epoch
    (`train/*` running: averaged over the epoch's augmented batches in train mode;
    `train_clean/*`: a fixed train subset evaluated like val); `rho/<layer>` for BIN;
    `val/feat_qXX`, quantiles of the penultimate features over the whole val set, per epoch.
    `test_step` returns logits and targets; the final evaluation (`training/evaluation.py`) turns
    them into metrics. `predict_step` returns class probabilities (`project.evaluate`,
    `project.predict`).
    """

    def __init__(
        self,
        model: Mapping,
        norm: Mapping,
        optimizer: Mapping,
        scheduler: Mapping,
        num_classes: int = 10,
        l1: float = 0.0,
        label_smoothing: float = 0.0,
        feature_quantiles: Sequence[float] = (0.01, 0.2, 0.8, 0.99),
        compile: bool | str = False,
        channels_last: bool = False,
        class_names: Sequence[str] | None = None,
        data_stats: Mapping | None = None,
        norm_name: str | None = None,
        gate_group: Mapping | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(model, norm, num_classes)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # torch.compile wraps the model; keep the wrapper out of the module tree so state_dict
        # keys stay `model.*` whether or not it is compiled.
        # `compile` is a bool or a torch.compile mode (e.g. "reduce-overhead": CUDA graphs).
        net = torch.compile(self.model, mode=compile_mode(compile)) if compile else self.model
        object.__setattr__(self, "_net", net)
        self.train_metrics = classification_metrics(num_classes, "train/")
        self.val_metrics = classification_metrics(num_classes, "val/")
        self.clean_train_metrics = classification_metrics(num_classes, "train_clean/")
        self.initial_loss: float | None = None
        self._val_features: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["normres"] = {"initial_loss": self.initial_loss}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.initial_loss = checkpoint.get("normres", {}).get("initial_loss", self.initial_loss)

    def _input(self, x: Tensor) -> Tensor:
        """Normalised images (B, 3, H, W) in the module's dtype and memory format."""
        x = x.to(self.dtype)  # float32 from the data module; trainer.precision=64-true wants double
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _step(self, batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x, y = batch
        logits, feats = self._net(self._input(x), return_features=True)
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()  # the loss in float32 under mixed precision
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        return loss, logits, feats, y

    def training_step(self, batch, batch_idx: int) -> Tensor:
        loss, logits, _, y = self._step(batch)
        if self.initial_loss is None and self.global_step == 0:
            self.initial_loss = float(loss.detach())
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.train_metrics(logits, y)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        if self.hparams.l1:
            loss = loss + self.hparams.l1 * l1_penalty(self.model)
        return loss

    def optimizer_step(self, *args, **kwargs):
        super().optimizer_step(*args, **kwargs)
        apply_constraints_(self.model)  # BIN's ρ back into [0, 1] after every step

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Loader 0: the val split. Loader 1 (if the datamodule serves it): a fixed subset of the
        train split, evaluated the same way, logged as `train_clean/*`."""
        loss, logits, feats, y = self._step(batch)
        prefix, metrics = (
            ("val/", self.val_metrics)
            if dataloader_idx == 0
            else (
                "train_clean/",
                self.clean_train_metrics,
            )
        )
        log = {"on_step": False, "on_epoch": True, "add_dataloader_idx": False}
        self.log(f"{prefix}loss", loss, prog_bar=dataloader_idx == 0, **log)
        metrics(logits, y)
        self.log_dict(metrics, **log)
        if dataloader_idx == 0:
            self._val_features.append(feats.detach().float())

    def on_train_epoch_end(self) -> None:
        """The mean BIN gate ρ of every BIN layer, `rho/<layer>` (1 = batch norm, 0 = instance)."""
        for name, module in self.model.named_modules():
            if isinstance(module, BatchInstanceNorm2d):
                self.log(f"rho/{name}", module.rho.detach().mean(), on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        if not self._val_features or self.trainer.sanity_checking:
            self._val_features.clear()
            return
        feats = self.all_gather(torch.cat(self._val_features)).reshape(-1)
        self._val_features.clear()
        quantiles = feature_quantiles(feats, self.hparams.feature_quantiles)
        self.log_dict({f"val/{k}": v for k, v in quantiles.items()}, sync_dist=False)

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        """Logits (B, K) and targets (B,) of one batch, for the evaluation callback."""
        _, logits, _, y = self._step(batch)
        return {"logits": logits.detach(), "target": y}

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        """`{"probs": (B, K) float32 softmax}`, plus `"target": (B,)` when the batch is
        `(images, labels)`; a batch of unlabeled images is the image tensor (B, 3, H, W) alone."""
        images, target = (batch, None) if isinstance(batch, Tensor) else batch
        probs = self._net(self._input(images)).float().softmax(dim=1)
        return {"probs": probs} if target is None else {"probs": probs, "target": target}

    def configure_optimizers(self):
        groups = param_groups(self.model, self.hparams.optimizer["lr"], self.hparams.gate_group)
        optimizer = instantiate(self.hparams.optimizer)(groups)
        max_epochs = max(1, self.trainer.max_epochs or 1)
        steps = self.trainer.estimated_stepping_batches
        steps_per_epoch = max(1, int(steps // max_epochs)) if steps != float("inf") else 1
        scheduler = instantiate(self.hparams.scheduler)(
            optimizer, max_epochs=max_epochs, steps_per_epoch=steps_per_epoch
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
