"""One process per run dir: an advisory lock held for the whole run.

Two runs given the same `hydra.run.dir` (or started in the same second before run dirs had a
unique suffix) used to write into one directory and crash or mix their files. The lock is an
`fcntl.flock` on `<run dir>/.lock`: the kernel drops it when the process dies, so a killed run
never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from project.errors import RunDirRefused

LOCK_FILE = ".lock"


class RunDirLock:
    """`with RunDirLock(run_dir):` — UserError if another live process holds the dir."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> RunDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunDirRefused(
                f"The run dir {self.path.parent} is in use by a running training process "
                f"(pid {holder}). Two runs in one dir would overwrite each other's checkpoints "
                f"and results. Wait for it to finish, or give this run its own dir (drop "
                f"hydra.run.dir to get a fresh one, or choose another)."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
