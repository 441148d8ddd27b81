"""What a report says, and `summary.md`: the variant table, the baseline differences, the
per-run table and the notes. `page.py` renders the same contents as HTML."""

from __future__ import annotations

from dataclasses import dataclass, field

from project.report.compare import Comparison, comparison_markdown
from project.report.runs import Run, status_counts
from project.report.sanity import SanityPair, sanity_markdown
from project.report.summary import SELECTION_NOTE, summary_display
from project.report.tables import MICRO_F1_NOTE, initial_loss_note, markdown, runs_display
from project.report.variants import Variant


@dataclass
class ReportContents:
    """Everything the Markdown and HTML pages show, computed once by `make_report`."""

    title: str
    runs: list[Run]
    variants: list[Variant]
    best: Variant | None
    comparisons: list[Comparison] = field(default_factory=list)
    pairs: list[SanityPair] = field(default_factory=list)


def intro(c: ReportContents) -> list[str]:
    """The paragraphs above the tables (plain text, shared by Markdown and HTML)."""
    best = f" Val best here: {c.best.label}." if c.best else ""
    return [
        f"{len(c.runs)} runs ({status_counts(c.runs)}) in {len(c.variants)} variants; a variant "
        "is the runs that differ only in their seed. Accuracies and F1 scores are final values "
        "in percent, shown as mean \u00b1 std (n) over seeds, where n counts the runs with a "
        "value; `-` means not available.",
        SELECTION_NOTE + best,
        MICRO_F1_NOTE,
    ]


def summary_markdown(c: ReportContents) -> str:
    parts = [f"# {c.title}\n", *(p + "\n" for p in intro(c))]
    parts += ["## Variants\n", markdown(summary_display(c.variants, c.best))]
    if c.comparisons:
        parts.append(comparison_markdown(c.comparisons))
    parts += ["## Runs\n", markdown(runs_display(c.runs))]
    note = initial_loss_note(c.runs)
    if note:
        parts.append(note)
    if c.pairs:
        parts.append(sanity_markdown(c.pairs))
    return "\n".join(parts)
