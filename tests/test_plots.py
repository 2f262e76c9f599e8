"""Timing plots: a figure without an interval is drawn hollow, without an error bar, and labelled."""

from __future__ import annotations

import pandas as pd
import pytest

from senet_profile.analysis.intervals import MIN_CI_SAMPLES
from senet_profile.report import plots

PAIR = "resnet18 -> se_resnet18"
MACHINE = {
    "cpu": "test cpu", "cores": 2, "python": "3.11", "machine_class": "test-2c",
    "versions": {"torch": "2", "torchvision": "0", "senet-profile": "0.1.0"},
}  # fmt: skip


def _figure(batch: int, samples: int, mode: str = "infer") -> dict:
    return {
        "model": PAIR, "metric": "latency_overhead", "setting": f"cpu {mode} b{batch} fp32 threads=1",
        "unit": "%", "value": 5.0 + batch, "ci_low": 4.0 + batch, "ci_high": 6.0 + batch,
        "samples": samples, "batch_size": batch, "mode": mode,
    }  # fmt: skip


def _record() -> dict:
    figures = [_figure(1, 200), _figure(8, 2), _figure(32, 2, mode="train")]
    figures += [
        {"model": name, "metric": "macs", "value": macs}
        for name, macs in (("resnet18", 1_000), ("se_resnet18", 1_010))
    ]
    return {"machine": MACHINE, "time": "2026-01-01T00:00:00Z", "commit": "abc", "figures": figures}


def _error_bar_points(axis) -> int:
    return sum(len(container.lines[0].get_xdata()) for container in axis.containers)


def _hollow(axis) -> list:
    return [line for line in axis.lines if line.get_markerfacecolor() == "none"]


def test_has_interval_needs_both_ends_and_enough_samples():
    assert plots.has_interval(1.0, 2.0, MIN_CI_SAMPLES)
    assert not plots.has_interval(1.0, 2.0, MIN_CI_SAMPLES - 1)
    assert not plots.has_interval(None, 2.0, 100) and not plots.has_interval(1.0, 2.0, None)


def test_batch_plot_draws_points_without_an_interval_hollow_and_labelled():
    axis = plots.batch_figure(_record(), PAIR).axes[0]
    assert _error_bar_points(axis) == 1  # only batch 1 (200 pairs) has its interval drawn
    hollow = _hollow(axis)
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [8]
    labels = [text.get_text() for text in axis.get_legend().get_texts()]
    assert any(f"2 pairs: no CI (fewer than {MIN_CI_SAMPLES})" in label for label in labels)


def test_flops_plot_draws_points_without_an_interval_hollow():
    axis = plots.flops_vs_latency_figure(_record()).axes[0]
    assert _error_bar_points(axis) == 1 and len(_hollow(axis)) == 2


def test_flops_plot_draws_the_machine_model_prediction_beside_flops():
    record = _record()
    record["figures"][0] |= {"flops_pct": 1.0, "predicted_pct": 4.5}
    axis = plots.flops_vs_latency_figure(record).axes[0]
    xs = sorted(float(c.lines[0].get_xdata()[0]) for c in axis.containers)
    assert xs == [1.0, 4.5]  # batch 1 has its interval: a FLOPs point and a machine-model point
    diagonal = next(line for line in axis.lines if line.get_label() == "predicted = measured")
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata())


def _history(samples: tuple[int, ...], commits: tuple[str, ...] | None = None) -> pd.DataFrame:
    commits = commits or ("0123456789ab",) * len(samples)
    return pd.DataFrame(
        [
            {"time": f"2026-11-2{k}T09:1{k}:00.5+00:00", "commit": commit, "machine_class": "test-2c",
             "pair": PAIR, "setting": "infer b1", "overhead_pct": 5.0, "ci_low": 4.0, "ci_high": 6.0,
             "samples": n, "noisy": False}
            for k, (n, commit) in enumerate(zip(samples, commits, strict=True))
        ]
    )  # fmt: skip


def test_history_plot_draws_runs_without_an_interval_hollow():
    axis = plots.history_figure(_history((100, 2, 100)), "history").axes[0]
    assert _error_bar_points(axis) == 2 and len(_hollow(axis)) == 1


def test_history_plot_labels_each_run_with_its_date_and_commit():
    commits = ("0123456789ab", "fedcba987654-dirty", "unknown")
    axis = plots.history_figure(_history((100, 100, 2), commits), "history").axes[0]
    labels = [tick.get_text() for tick in axis.get_xticklabels()]
    assert labels == ["2026-11-20 09:10 0123456", "2026-11-21 09:11 fedcba9+", "2026-11-22 09:12 unknown"]
    assert list(axis.get_xticks()) == [0, 1, 2]


def test_history_run_labels_are_in_utc_and_thinned_past_the_limit():
    assert plots.run_label("2026-11-21T12:30:00+02:00", "abcdef0123") == "2026-11-21 10:30 abcdef0"
    many = _history((100,) * (plots.MAX_RUN_LABELS + 1))
    many["time"] = [f"2026-11-21T{k // 60:02d}:{k % 60:02d}:00+00:00" for k in range(len(many))]
    axis = plots.history_figure(many, "history").axes[0]
    assert list(axis.get_xticks()) == list(range(0, len(many), 2))


@pytest.mark.parametrize("figure", [plots.batch_figure, plots.flops_vs_latency_figure])
def test_records_without_a_samples_field_are_drawn_without_intervals(figure):
    record = _record()
    for item in record["figures"]:
        item.pop("samples", None)
    args = (record, PAIR) if figure is plots.batch_figure else (record,)
    assert _error_bar_points(figure(*args).axes[0]) == 0


def test_svg_is_byte_stable_between_saves(tmp_path) -> None:
    from matplotlib.figure import Figure

    from senet_profile.report.plots import save

    def draw() -> Figure:
        figure = Figure()
        figure.subplots().bar([0, 1], [1.0, 2.0])
        return figure

    first = save(draw(), tmp_path / "a", "f")[1].read_bytes()
    second = save(draw(), tmp_path / "b", "f")[1].read_bytes()
    assert first == second


def test_history_legend_is_capped_one_entry_a_series():
    frames = []
    for index in range(30):
        frame = _history((100, 2)).assign(setting=f"infer b{index}")
        frames.append(frame)
    axis = plots.history_figure(pd.concat(frames, ignore_index=True), "history").axes[0]
    texts = [text.get_text() for text in axis.get_legend().get_texts()]
    assert len(texts) == plots.MAX_LEGEND_SERIES + 1
    assert texts[0] == f"{PAIR} (infer b0)"  # series in the order drawn, hollow points not a second entry
    assert texts[-2].startswith("... 19 more series") and texts[-1].startswith("hollow: fewer than")
