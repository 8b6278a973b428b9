"""The SuppressionLists benchmark's arithmetic: run totals, changes, requests per 1000 changed."""

from __future__ import annotations

from typing import Any

from bench.optin_sync import run_totals
from bench.suppression_sync import crm_step_counts, figures


class _Int64:
    """How the table client hands back 64-bit counters."""

    def __init__(self, value: int) -> None:
        self.value = value


def _stats(dataverse: int, dotdigital: int = 10) -> dict[str, Any]:
    return {"dataverse": {"requests": dataverse, "by_route": {}, "throttled": 2},
            "dotdigital": {"requests": dotdigital, "throttled": 1}}


def test_run_totals_sum_the_counters_of_every_account_and_skip_other_columns() -> None:
    runs = [{"n_items": 10, "n_rows_created": _Int64(4), "Status": "completed", "DryRun": False},
            {"n_items": _Int64(5), "n_rows_created": 1, "n_notes": 2}]
    assert run_totals(runs) == {"items": 15, "rows_created": 5, "notes": 2}


def test_changes_are_rows_flags_and_notes_and_requests_are_per_1000_of_them() -> None:
    totals = {"items": 3000, "rows_created": 1000, "rows_updated": 100, "rows_removed": 50,
              "dnbe_set": 300, "dnbe_cleared": 40, "notes": 10, "resubscribed_without_row": 7,
              "requests_added": 2, "requests_refused": 1}
    result = figures(totals, _stats(dataverse=15))
    assert result["changed"] == 1500
    assert result["dataverse_requests_per_1000_changed"] == 10.0
    assert result["suppressions_read"] == 3000
    assert result["requests_by_outcome"] == {"added": 2, "refused": 1}
    assert result["throttled_responses"] == 3


def test_nothing_changed_does_not_divide_by_zero() -> None:
    assert figures({}, _stats(dataverse=4))["dataverse_requests_per_1000_changed"] == 4000.0


def test_the_crm_step_counts_are_summed_from_the_connector_log() -> None:
    log = ("x account=a CRM suppressions: {'pushed': 2, 'requests_added': 1}\n"
           "y account=b CRM suppressions: {'pushed': 0, 'requests_added': 3,"
           " 'requests_challenged': 1}\n")
    assert crm_step_counts(log) == {"pushed": 2, "requests_added": 4, "requests_challenged": 1}
