"""Where the eager CPU step goes: ResNet-14 training step, scratch BN vs torch's BN net, bf16
autocast, channels_last, batch 128, per-op self CPU time (torch.profiler), 2 threads.

Run from the repo root (not part of CI; its output on the 2-core AMX Xeon is profile_step_cpu.log
beside this file): `PYTHONPATH=. python experiments/benchmarks/amx_xeon/profile_step_cpu.py`
"""

import time

import torch
from torch.profiler import ProfilerActivity, profile

from project.bench.model_step import _sgd_step
from project.bench.reference import reference_like
from project.models import ResNet
from project.nn import norm_layer

STEPS = 10
torch.set_num_threads(2)
fmt = torch.channels_last
x = torch.randn(128, 3, 32, 32).to(memory_format=fmt)
y = torch.randint(0, 10, (128,))
torch.manual_seed(0)
scratch = ResNet(2, norm_layer=norm_layer("bn")).to(memory_format=fmt).train()
ref = reference_like(scratch, "bn").to(memory_format=fmt).train()
for name, model in (("scratch", scratch), ("torch", ref)):
    step = _sgd_step(model, x, y, "bf16")
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(STEPS):
        step()
    print(f"{name}: {(time.perf_counter() - start) / STEPS * 1e3:.1f} ms/step (unprofiled)")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(STEPS):
            step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)
    print(f"{name}: top ops by self CPU time over {STEPS} steps\n{table}")
