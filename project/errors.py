"""The one exception type for mistakes a user can make (bad config, missing data, wrong checkpoint),
and the one way every entry point reports it.

Entry points (`project.train`, `project.evaluate`, ...) run through `run_cli`, which prints a
`UserError`'s message as one paragraph and exits with code 2 instead of a traceback.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from typing import Any


class UserError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""


class RunDirRefused(UserError):
    """The run dir belongs to another run or attempt (in use, finished, or a resume that does not
    match it): report it and write nothing there."""


def required(cfg: Any, key: str, what: str, example: str) -> str:
    """`cfg[key]` as a string; a UserError naming `key` and a whole example command when the
    config leaves it as `???` (e.g. `ckpt` of evaluate, export and predict)."""
    from omegaconf.errors import MissingMandatoryValue

    try:
        return str(cfg[key])
    except MissingMandatoryValue:
        raise UserError(f"No {what} given: pass {key}=PATH, e.g. {example}.") from None


def paragraph(label: str, message: str) -> str:
    # Paths and overrides stay whole (copy-pasteable): break only at spaces.
    return textwrap.fill(
        f"[normres] {label}: {message}", width=100, break_on_hyphens=False, break_long_words=False
    )


def report_error(message: str) -> None:
    print("\n" + paragraph("error", message), file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(paragraph("warning", message), file=sys.stderr, flush=True)


def find_user_error(err: BaseException | None) -> UserError | None:
    """The UserError behind `err`, if any (hydra.utils.instantiate wraps what a target raises)."""
    while err is not None:
        if isinstance(err, UserError):
            return err
        err = err.__cause__ or err.__context__
    return None


def run_cli(command: Callable[[Any], Any], cfg: Any) -> Any:
    """Run a CLI command; a UserError (possibly wrapped) is printed as one paragraph and exits
    with code 2. Anything else is a bug and keeps its traceback."""
    try:
        return command(cfg)
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        report_error(str(user_error))
        sys.exit(2)
