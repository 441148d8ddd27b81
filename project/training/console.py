"""What a run shows on the console, and `<run dir>/train.log`: the same text.

- `print_config_tree`: the resolved config as a rich tree (as lightning-hydra-template's
  `print_config_tree`), every `${...}` replaced by its value, so the console and train.log say
  what actually ran.
- `ConsoleLog`: for the duration of a job, stdout and stderr are copied into train.log: prints,
  warnings, progress bars and log records alike. Hydra's own file handler is switched off
  (`conf/hydra/job_logging/console.yaml`): it only ever saw log records, not the console.
- Lightning adds its own stream handler to the `lightning` logger *and* lets records propagate to
  Hydra's root handler, so every INFO line was printed twice. Here the `lightning` logger keeps
  only its own handler (short `INFO: ...` lines) and stops propagating.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

LOG_FILE = "train.log"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours and cursor moves: not for a file
_LOGGERS = ("", "lightning")  # the root logger (Hydra's console handler) and Lightning's


def print_config_tree(cfg: DictConfig) -> None:
    """Print the resolved config as a tree: the top-level settings first, then one branch per
    group. A config that cannot be resolved is printed unresolved (validation says why next)."""
    import yaml
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # e.g. a missing interpolation key: the validator reports it
        print(f"[normres] config (unresolved: {err}):\n{OmegaConf.to_yaml(cfg)}")
        return
    tree = Tree("[bold]config[/bold]", guide_style="dim")
    settings = {k: v for k, v in container.items() if not isinstance(v, dict)}
    groups = {k: v for k, v in container.items() if isinstance(v, dict)}
    for name, node in [("settings", settings), *groups.items()]:
        text = yaml.safe_dump(node, sort_keys=False, default_flow_style=False).rstrip()
        syntax = Syntax(text, "yaml", theme="ansi_dark", word_wrap=True)
        tree.add(f"[bold]{name}[/bold]").add(syntax)
    console = Console(file=sys.stdout)
    if not console.is_terminal:  # a log file or pipe: wide enough that paths stay on one line
        console.width = 160
    console.print(tree)


class _LogSink:
    """Where the copy of the console goes: held in memory until the run dir is this run's
    (`claim`), then train.log. A run refused its dir (in use, another run's results) never
    writes there; its console output is dropped from the copy."""

    def __init__(self):
        self.file = None
        self.pending: list[str] | None = []

    def write(self, text: str) -> None:
        if self.pending is not None:
            self.pending.append(_ANSI.sub("", text))
        elif self.file is not None:
            try:
                self.file.write(_ANSI.sub("", text))
            except (OSError, ValueError):  # a full disk or closed file must not stop training
                self.file = None

    def claim(self, path: Path) -> None:
        if self.pending is None:
            return
        try:
            self.file = open(path, "a", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115
            self.file.write("".join(self.pending))
        except OSError:
            self.file = None
        self.pending = None

    def close(self) -> None:
        self.pending = None
        if self.file is not None:
            self.file.close()
            self.file = None


class _Tee:
    """A text stream writing to the console stream and to the log sink."""

    def __init__(self, stream, sink: _LogSink):
        self.stream = stream
        self.sink = sink

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.sink.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        if self.sink.file is not None:
            try:
                self.sink.file.flush()
            except (OSError, ValueError):
                self.sink.file = None

    def __getattr__(self, name):  # isatty, fileno, encoding, ...: the console's
        return getattr(self.stream, name)


def _console_stream(stream):
    """The real console stream behind `stream` (a tee left over from an earlier job)."""
    while isinstance(stream, _Tee):
        stream = stream.stream
    return stream


class ConsoleLog:
    """`with ConsoleLog(run_dir) as log:` copies the job's stdout and stderr into
    run_dir/train.log from the start of the job, once `log.claim()` says the dir is this run's
    (appended: a resumed run keeps the earlier attempts' log). With `to_file=False` (a DDP rank
    > 0, whose dir is rank 0's) only the duplicate Lightning lines are fixed."""

    def __init__(self, run_dir: Path, to_file: bool = True):
        self.path = Path(run_dir) / LOG_FILE
        self.to_file = to_file
        self._saved: dict = {}

    def claim(self) -> None:
        """The run dir is this run's: write what was printed so far, and the rest as it comes."""
        if self.to_file:
            self.sink.claim(self.path)

    def __enter__(self) -> ConsoleLog:
        self.sink = _LogSink()
        out = _Tee(_console_stream(sys.stdout), self.sink)
        err = _Tee(_console_stream(sys.stderr), self.sink)
        self._saved = {"stdout": sys.stdout, "stderr": sys.stderr, "handlers": []}
        sys.stdout, sys.stderr = out, err
        # Logging handlers were created before the job, on the console streams: point them here.
        tees = {id(out.stream): out, id(err.stream): err}
        for name in _LOGGERS:
            for handler in logging.getLogger(name).handlers:
                if type(handler) is logging.StreamHandler:
                    tee = tees.get(id(_console_stream(handler.stream)))
                    if tee is not None:
                        self._saved["handlers"].append((handler, handler.stream))
                        handler.setStream(tee)
        # Set before Lightning is imported: its import adds its handler on sys.stderr (the tee).
        lightning = logging.getLogger("lightning")
        self._saved["propagate"] = lightning.propagate
        lightning.propagate = False
        return self

    def __exit__(self, *exc) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self._saved["stdout"], self._saved["stderr"]
        for handler, stream in self._saved["handlers"]:
            handler.setStream(_console_stream(stream))
        for handler in logging.getLogger("lightning").handlers:  # added during this job
            if type(handler) is logging.StreamHandler and isinstance(handler.stream, _Tee):
                handler.setStream(_console_stream(handler.stream))
        logging.getLogger("lightning").propagate = self._saved["propagate"]
        self.sink.close()
