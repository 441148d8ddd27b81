"""Where the GPU step goes: kernels launched and GPU-busy time per ResNet-14 training step,
scratch BN vs torch's BN net, bf16 autocast, channels_last, batch 128 (torch.profiler).

Run on a CUDA machine from the repo root:
`PYTHONPATH=. python experiments/benchmarks/gpu_h100/profile_step.py`
(its output on the lent H100 is profile_step.log beside this file). Not part of CI.
"""

import time

import torch
from torch.profiler import ProfilerActivity, profile

from project.bench.model_step import _sgd_step
from project.bench.reference import reference_like
from project.models import ResNet
from project.nn import norm_layer

dev = torch.device("cuda")
fmt = torch.channels_last
x = torch.randn(128, 3, 32, 32, device=dev).to(memory_format=fmt)
y = torch.randint(0, 10, (128,), device=dev)
torch.manual_seed(0)
scratch = ResNet(2, norm_layer=norm_layer("bn")).to(dev, memory_format=fmt).train()
ref = reference_like(scratch, "bn").to(dev, memory_format=fmt).train()
for name, m in (("scratch", scratch), ("torch", ref)):
    step = _sgd_step(m, x, y, "bf16")
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20):
        step()
    torch.cuda.synchronize()
    print(name, "ms/step", (time.perf_counter() - t) / 20 * 1e3)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        for _ in range(5):
            step()
        torch.cuda.synchronize()
    ka = p.key_averages()
    print(
        name,
        "kernels/step",
        sum(e.count for e in ka if e.device_type.name == "CUDA") / 5,
        "gpu ms/step",
        sum(e.self_device_time_total for e in ka) / 5e3,
    )
    print(ka.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=50))
