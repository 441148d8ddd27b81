"""`python -m project.studies STUDY... [--seeds 0,1,2] [--epochs N] [--commit] [-- OVERRIDES]`

Works through the full-scale studies' queue (see `project.studies.queue`): skips runs whose record
is committed under experiments/<study>/runs/, resumes interrupted ones, commits each finished
record with `--commit`. Stop it any time (Ctrl-C) and run the same command again to continue.

    python -m project.studies norm_comparison --epochs 30 --commit -- scheduler=cosine
    python -m project.studies norm_comparison bn_sanity --dry-run     # what would run
    python -m project.studies jpeg_effect bf16_effect --seeds 0,1,2,3,4,5,6,7,8,9   # CPU scale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from project.errors import UserError, report_error
from project.studies.full_scale import STUDIES, plan
from project.studies.queue import run_queue


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m project.studies", description=__doc__)
    parser.add_argument("studies", nargs="+", metavar="STUDY", help=", ".join(STUDIES))
    parser.add_argument("--seeds", default="0,1,2", help="comma list (default 0,1,2)")
    parser.add_argument("--epochs", type=int, default=None, help="trainer.max_epochs of every run")
    parser.add_argument("--records", default="experiments", help="where records are committed")
    parser.add_argument("--work", default="outputs/full", help="run dirs (git-ignored)")
    parser.add_argument("--commit", action="store_true", help="git commit each finished record")
    parser.add_argument("--dry-run", action="store_true", help="list the actions, train nothing")
    args = parser.parse_args(argv)
    unknown = [s for s in args.studies if s not in STUDIES]
    if unknown:
        report_error(f"unknown study {', '.join(unknown)}; choose from {', '.join(STUDIES)}.")
        return 2
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        report_error(f"--seeds {args.seeds!r} is not a comma list of integers, e.g. 0,1,2.")
        return 2
    runs = plan(args.studies, seeds, args.epochs, extra)
    try:
        outcome = run_queue(
            runs, Path(args.records), Path(args.work), dry_run=args.dry_run, commit=args.commit
        )
    except UserError as err:
        report_error(str(err))
        return 1
    done = sum(v in ("skip", "completed", "diverged") for v in outcome.values())
    print(f"[queue] {done} of {len(runs)} runs have a record")
    return 0 if done == len(runs) or args.dry_run else 1


if __name__ == "__main__":
    sys.exit(main())
