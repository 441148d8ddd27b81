"""Report figures: mean ± std bands, steps for lr, one y scale across quantile panels, axis labels
and a legend (or a colourbar with its unit) on every figure; built from hand-written runs."""

from __future__ import annotations

import pytest

from project.report.build import PLOTS
from project.report.plots import variant_colors
from project.report.runs import load_runs
from project.report.variants import group_variants
from tests.report_runs import EPOCHS, write_run


@pytest.fixture()
def seeds_sweep(tmp_path):
    for norm in ("bn", "gn"):
        for seed in (1, 2, 3):
            write_run(tmp_path / f"{norm}{seed}", norm, seed, 0.7)
    return tmp_path


@pytest.fixture()
def rich_runs(tmp_path) -> list:
    """Two variants x 2 seeds with every curve the report can plot, checkpoints included."""
    import torch

    columns = {
        "train_clean/acc": [0.3, 0.4, 0.5],
        **{
            f"val/feat_{q}": [v] * EPOCHS
            for q, v in (("q01", -1), ("q20", 0), ("q80", 1), ("q99", 3))
        },
        "rho/layer1.0.bn1": [1.0, 0.9, 0.8],
        "rho/layer1.0.bn2": [1.0, 0.7, 0.5],
    }
    for norm in ("bn", "bin"):
        for seed in (1, 2):
            run = write_run(tmp_path / f"{norm}{seed}", norm, seed, 0.7, columns=columns)
            g = torch.Generator().manual_seed(seed)
            state = {"model.conv1.weight": torch.randn(4, 3, 3, 3, generator=g),
                     "model.fc.weight": torch.randn(3, 4, generator=g)}  # fmt: skip
            (run / "checkpoints").mkdir()
            torch.save({"state_dict": state}, run / "checkpoints" / "best.ckpt")
    return group_variants(load_runs([tmp_path]))


def _figures(variants) -> dict:
    import matplotlib

    out = {}
    colors = variant_colors(variants)
    for spec in PLOTS:
        with matplotlib.rc_context({"axes.grid": True}):
            fig = spec.draw(variants, colors)
        assert not isinstance(fig, str), (spec.filename, fig)
        out[spec.filename] = fig[0] if isinstance(fig, tuple) else fig
    return out


def test_every_figure_has_axis_labels_and_a_legend(rich_runs):
    for name, fig in _figures(rich_runs).items():
        colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        panels = [ax for ax in fig.axes if ax.axison and ax not in colorbars]
        assert panels, name
        for ax in panels:
            assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())
        for ax in colorbars:
            assert ax.get_ylabel() or ax.get_xlabel(), name  # a colourbar states its unit
        has_legend = fig.legends or any(ax.get_legend() for ax in panels)
        assert has_legend or colorbars, name  # a colourbar is the legend of a heat map


def test_long_sweep_labels_stay_inside_the_figure_and_their_panels(rich_runs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for i, variant in enumerate(rich_runs):  # as lab_l1_vs_l2 labels its variants
        variant.label = f"regularization.l1={i}e-05 optimizer.weight_decay=0.000{i}"
    for name, fig in _figures(rich_runs).items():
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        for legend in fig.legends:
            box = legend.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= fig.bbox.x1, (name, box, fig.bbox)
        for ax in fig.axes:  # a panel's title is no wider than its panel: no overlap
            title = ax.title
            if title.get_text():
                width = title.get_window_extent(renderer).width
                assert width <= 1.15 * ax.get_window_extent(renderer).width, (name, title)


def test_figure_details(rich_runs):
    figs = _figures(rich_runs)
    (lr_ax,) = figs["lr_curves.png"].axes
    assert {line.get_drawstyle() for line in lr_ax.get_lines()} == {"steps-post"}
    quantile_axes = [ax for ax in figs["feature_quantiles.png"].axes if ax.axison]
    assert len(quantile_axes) == 2
    assert quantile_axes[0].get_shared_y_axes().joined(*quantile_axes)  # one y scale
    error_axes = figs["error_curves.png"].axes
    assert "clean" in error_axes[0].get_title()  # train_clean/acc preferred over the running one
    # A mean line per variant with a band (2 seeds) under it.
    assert len(error_axes[1].get_lines()) == 2 and len(error_axes[1].collections) == 2
    confusion = figs["confusion_matrix.png"]
    assert (
        "fraction" in next(a for a in confusion.axes if a.get_label() == "<colorbar>").get_ylabel()
    )
    assert "2 runs summed" in confusion.axes[0].get_title()
    rho_axes = [ax for ax in figs["bin_gate_rho.png"].axes if ax.axison]
    assert "\u03c1" in rho_axes[0].get_ylabel()


def test_running_train_accuracy_is_labelled_as_running(seeds_sweep):
    variants = group_variants(load_runs([seeds_sweep]))
    fig = _figure_of(variants, "error_curves.png")
    assert "running: augmented, train mode" in fig.axes[0].get_title()


def _figure_of(variants, filename: str):
    spec = next(s for s in PLOTS if s.filename == filename)
    fig = spec.draw(variants, variant_colors(variants))
    return fig[0] if isinstance(fig, tuple) else fig
