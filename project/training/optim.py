"""Optimizer parameter groups.

BIN's gate ρ (Nam & Kim 2018) is trained in the authors' code (hyseob/Batch-Instance-
Normalization, `main.py`) in its own group: no weight decay (decay would pull every gate towards
0, i.e. towards instance norm) and 10x the learning rate. `gate_group` configures that group;
with `gate_group=null` the gates share the weights' group.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from project.nn import BatchInstanceNorm2d


def gate_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [m.rho for m in model.modules() if isinstance(m, BatchInstanceNorm2d)]


def param_groups(model: nn.Module, base_lr: float, gate_group: Mapping | None) -> list[dict]:
    """`[weights]`, or `[weights, bin_gates]` with the gate group's lr and weight decay."""
    gates = gate_parameters(model)
    if not gates or gate_group is None:
        return [{"params": list(model.parameters()), "name": "weights"}]
    gate_ids = {id(p) for p in gates}
    weights = [p for p in model.parameters() if id(p) not in gate_ids]
    return [
        {"params": weights, "name": "weights"},
        {
            "params": gates,
            "name": "bin_gates",
            "lr": base_lr * float(gate_group.get("lr_scale", 1.0)),
            "weight_decay": float(gate_group.get("weight_decay", 0.0)),
        },
    ]
