"""Test-session setup shared by every test module."""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core (`-n auto`). Each worker, and every CLI subprocess it
    # starts (they inherit the environment), gets one torch thread: two processes with two
    # OpenMP threads each on 2 cores spin against each other (measured 8x slower steps).
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
