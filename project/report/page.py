"""The self-contained `report.html`: inline CSS, PNGs referenced by relative path, no scripts.

Everything is escaped and nothing time-dependent is written, so the page is deterministic and
can be opened offline straight from the report folder.
"""

from __future__ import annotations

from html import escape

import pandas as pd

from project.report.compare import COMPARISON_INTRO, METRIC_WORDS, by_spec, sentence
from project.report.markdown import ReportContents, intro
from project.report.plots import PlotResult
from project.report.sanity import SANITY_INTRO, sanity_table
from project.report.summary import summary_display
from project.report.tables import initial_loss_note, runs_display

_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
td.diverged { background: #fff3cd; }
td.failed, td.incomplete { background: #f8d7da; }
td.best { font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; }
.skipped { color: #777; }
code { font-size: 12px; }
""".strip()


def _table(frame: pd.DataFrame, row_classes: list[str] | None = None, name: str = "t") -> str:
    """An HTML table of a frame of strings, every cell escaped; `row_classes` style whole rows
    (pandas' Styler, with a fixed id so the page stays byte-for-byte reproducible)."""
    styler = frame.style.hide(axis="index").format(escape="html").set_uuid(name)
    if row_classes:
        classes = pd.DataFrame(
            [[cls] * frame.shape[1] for cls in row_classes],
            index=frame.index,
            columns=frame.columns,
        )
        styler = styler.set_td_classes(classes)
    return styler.to_html()


def _variant_classes(c: ReportContents) -> list[str]:
    """A row class per variant: its status when all its runs share one, and `best` (val)."""
    out = []
    for v in c.variants:
        statuses = {r.status for r in v.runs}
        cls = statuses.pop() if len(statuses) == 1 else "mixed"
        out.append(cls + (" best" if v is c.best else ""))
    return out


def render_html(c: ReportContents, plots: list[PlotResult]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{escape(c.title)}</title>",
        f"<style>\n{_CSS}\n</style></head>",
        "<body>",
        f"<h1>{escape(c.title)}</h1>",
        *(f"<p>{escape(p)}</p>" for p in intro(c)),
        '<p>Full precision values are in <a href="summary.csv">summary.csv</a> (variants) and '
        '<a href="runs.csv">runs.csv</a> (runs).</p>',
        "<h2>Variants</h2>",
        _table(summary_display(c.variants, c.best), _variant_classes(c), "variants"),
    ]
    for spec, metrics in by_spec(c.comparisons).items():
        parts += [
            f"<h2>Differences to the baseline ({escape(spec)})</h2>",
            f"<p>{escape(COMPARISON_INTRO)}</p>",
        ]
        for metric, chosen in metrics.items():
            items = [f"<li>{escape(sentence(x))}</li>" for x in chosen]
            parts += [f"<p>{METRIC_WORDS[metric]}:</p>", "<ul>", *items, "</ul>"] if items else []
    parts += ["<h2>Runs</h2>", _table(runs_display(c.runs), [r.status for r in c.runs], "runs")]
    note = initial_loss_note(c.runs)
    if note:
        parts.append(f"<p>{escape(note.strip())}</p>")
    if c.pairs:
        s_headers, s_body = sanity_table(c.pairs)
        parts += [
            "<h2>BN sanity check</h2>",
            f"<p>{escape(SANITY_INTRO)}</p>",
            _table(pd.DataFrame(s_body, columns=s_headers), name="sanity"),
        ]
    for plot in plots:
        parts.append(f"<h2>{escape(plot.title)}</h2>")
        if plot.written:
            parts.append(f'<img src="{escape(plot.filename)}" alt="{escape(plot.title)}">')
            if plot.note:
                parts.append(f"<p>{escape(plot.note)}</p>")
        else:
            parts.append(f'<p class="skipped">Skipped: {escape(plot.reason)}.</p>')
    parts.append("<h2>Run directories</h2>")
    parts.append("<ul>")
    parts += [
        f"<li><b>{escape(r.label)}</b>: <code>{escape(r.path.as_posix())}</code></li>"
        for r in c.runs
    ]
    parts += ["</ul>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
