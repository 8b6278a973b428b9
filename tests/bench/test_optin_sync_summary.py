"""The benchmark's summary of repeated runs."""

from __future__ import annotations

from typing import Any

from bench.optin_sync import SUMMARISED, summarise


def _run(efficiency: float, **figures: float) -> dict[str, Any]:
    return {**dict.fromkeys(SUMMARISED, 1.0), "efficiency": efficiency, **figures}


def test_the_summary_gives_median_lowest_and_highest_when_runs_are_odd() -> None:
    summary = summarise([_run(0.7), _run(0.8), _run(0.75)])
    assert summary["efficiency"] == {"median": 0.75, "min": 0.7, "max": 0.8}


def test_the_median_is_the_mean_of_the_middle_two_when_runs_are_even() -> None:
    summary = summarise([_run(0.7, peak_rss_mb=60), _run(0.8, peak_rss_mb=70)])
    assert summary["efficiency"]["median"] == 0.75
    assert summary["peak_rss_mb"] == {"median": 65.0, "min": 60.0, "max": 70.0}
