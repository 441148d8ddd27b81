"""experiments/table.py: the README table of a study, printed or written between markers."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "table.py"
spec = importlib.util.spec_from_file_location("study_table", SCRIPT)
study_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study_table)


@pytest.fixture
def summary(tmp_path: Path) -> Path:
    """A summary.csv and comparison.csv as `project.report --baseline norm=bn` writes them."""
    pd.DataFrame(
        {
            "variant": ["norm=bn", "norm=gn"],
            "n": [2, 1],
            "val/acc_mean": [0.825, 0.769],
            "val/acc_std": [0.002, float("nan")],
            "test/acc_mean": [0.822, 0.768],
            "test/acc_std": [0.0017, float("nan")],
            "epochs_mean": [15, 15],
            "wall_time_s_mean": [740.0, 711.0],
            "val_best": [True, False],
            "status": ["completed", "completed"],
        }
    ).to_csv(tmp_path / "summary.csv", index=False)
    pd.DataFrame(
        {"variant": ["norm=gn"], "metric": ["test/acc"], "diff": [-0.056]}
        | {"ci95_lo": [-0.064], "ci95_hi": [-0.048]}
    ).to_csv(tmp_path / "comparison.csv", index=False)
    return tmp_path / "summary.csv"


def test_rows_carry_mean_std_n_and_the_difference_to_the_baseline(summary):
    lines = study_table.table([str(summary)]).splitlines()
    assert lines[0].startswith("| variant | n | val acc % | test acc % |")
    assert lines[2].startswith("| norm=bn* | 2 | 82.5 ± 0.2 | 82.2 ± 0.2 |")
    assert "| baseline |" in lines[2]
    assert lines[3].startswith("| norm=gn | 1 | 76.9 | 76.8 |")  # one run: no std
    assert "| \u22125.6 [\u22126.4, \u22124.8] |" in lines[3]


def test_into_replaces_only_the_text_between_its_markers(summary, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- t:begin -->\nold table\n<!-- t:end -->\nreading\n")
    study_table.main([str(summary), "--into", str(readme), "--marker", "t"])
    text = readme.read_text()
    assert text.startswith("intro\n<!-- t:begin -->\n| variant |")
    assert text.endswith("|\n<!-- t:end -->\nreading\n")
    assert "old table" not in text and "norm=gn" in text


def test_a_readme_without_the_markers_is_left_alone_with_a_message(summary, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="no '<!-- t:begin -->'"):
        study_table.main([str(summary), "--into", str(readme), "--marker", "t"])
    assert readme.read_text() == "no markers here\n"


def test_with_several_baselines_the_column_is_the_first_ones(summary):
    """`--baseline norm=bn --baseline batch_size=128,...` lists norm=gn twice: the first wins."""
    path = summary.parent / "comparison.csv"
    rows = pd.read_csv(path)
    later = rows.assign(diff=[0.01], ci95_lo=[-0.01], ci95_hi=[0.03])
    pd.concat([rows, later]).to_csv(path, index=False)
    (gn,) = [line for line in study_table.table([str(summary)]).splitlines() if "norm=gn" in line]
    assert "| \u22125.6 [\u22126.4, \u22124.8] |" in gn and "+1.0" not in gn
