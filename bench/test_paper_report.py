"""How long the whole `senet-profile paper` report takes to compute (target: under 30 s on 2 cores)."""

from __future__ import annotations

from senet_profile.report import paper


def _fresh_report():
    paper.counts_for.cache_clear()  # every model built and traced again, as in a fresh process
    return paper.paper_report()


def test_paper_report_time(benchmark) -> None:
    frame = benchmark.pedantic(_fresh_report, rounds=1, iterations=1)
    seconds = benchmark.stats.stats.max
    benchmark.extra_info["figure"] = {
        "model": "paper report", "metric": "paper_report_time", "setting": "meta device",
        "unit": "s", "value": seconds, "deterministic": False, "informational": True,
        "figures": len(frame),
    }  # fmt: skip
    assert len(frame) > 0
