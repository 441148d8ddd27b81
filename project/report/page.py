"""The self-contained `report.html`: inline CSS, PNGs referenced by relative path, no scripts.

Everything is escaped and nothing time-dependent is written, so the page is deterministic and
can be opened offline straight from the report folder.
"""

from __future__ import annotations

from html import escape

from project.report.plots import PlotResult
from project.report.runs import Run
from project.report.sanity import SANITY_INTRO, SanityPair, sanity_table
from project.report.tables import display_table, initial_loss_note, status_counts

_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
tr.diverged td { background: #fff3cd; }
tr.failed td, tr.incomplete td { background: #f8d7da; }
img { max-width: 100%; border: 1px solid #ddd; }
.skipped { color: #777; }
code { font-size: 12px; }
""".strip()


def _table(headers: list[str], body: list[list[str]], row_classes: list[str] | None = None) -> str:
    lines = ["<table>", "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>"]
    for i, cells in enumerate(body):
        cls = f' class="{escape(row_classes[i])}"' if row_classes else ""
        lines.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def render_html(
    title: str, runs: list[Run], plots: list[PlotResult], pairs: list[SanityPair]
) -> str:
    headers, body = display_table(runs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{_CSS}\n</style></head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{len(runs)} runs ({escape(status_counts(runs))}). Accuracies and F1 scores are final "
        "values in percent; <code>-</code> means not available. Full precision values are in "
        '<a href="summary.csv">summary.csv</a>.</p>',
        "<h2>Summary</h2>",
        _table(headers, body, [r.status for r in runs]),
    ]
    note = initial_loss_note(runs)
    if note:
        parts.append(f"<p>{escape(note.strip())}</p>")
    if pairs:
        s_headers, s_body = sanity_table(pairs)
        parts += [
            "<h2>BN sanity check</h2>",
            f"<p>{escape(SANITY_INTRO)}</p>",
            _table(s_headers, s_body),
        ]
    for plot in plots:
        parts.append(f"<h2>{escape(plot.title)}</h2>")
        if plot.written:
            parts.append(f'<img src="{escape(plot.filename)}" alt="{escape(plot.title)}">')
            if plot.note:
                parts.append(f"<p>{escape(plot.note)}</p>")
        else:
            parts.append(f'<p class="skipped">Skipped: {escape(plot.reason)}.</p>')
    parts.append("<h2>Runs</h2>")
    parts.append("<ul>")
    parts += [
        f"<li><b>{escape(r.label)}</b>: <code>{escape(r.path.as_posix())}</code></li>" for r in runs
    ]
    parts += ["</ul>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
