"""``make run ONCE=1``: one opt-in sync per demo account, a report on stdout and in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools import run_local


def test_run_once_reports_every_account_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_local.main(["--once", "--settings", "local.settings.sample.json",
                           "--contacts", "300", "--run-dir", str(tmp_path)])
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 0, report
    assert report["ok"] is True
    assert [a["email_account"] for a in report["accounts"]] == ["Brand 1", "Brand 2"]
    for account in report["accounts"]:
        assert account["runs"] == 1 and account["unfinished_runs"] == 0
        assert account["records_read"] > 0 and account["batches"] > 0
    total = report["total"]
    assert sum(total["changed"].values()) > 0
    assert total["records_read"] == sum(a["records_read"] for a in report["accounts"])
    assert report["requests"]["dotdigital"] > 0 and report["requests"]["dataverse"] > 0
    assert report["dead_lettered"] == 0 and report["dead_letters"] == []
    # The connectivity check of the last sync cycle, from its journal summary.
    connectivity = report["connectivity"]
    assert connectivity["ok"] is True
    assert sorted(a["email_account"] for a in connectivity["accounts"]) == ["Brand 1", "Brand 2"]
    assert all(a["email_account_id"] and a["error"] is None for a in connectivity["accounts"])
    out = capsys.readouterr().out
    assert "Brand 1" in out and "TOTAL" in out and "result: OK" in out


def test_a_settings_file_missing_a_required_setting_exits_2_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # A local.settings.json copied before a release added a required setting.
    sample = json.loads(Path("local.settings.sample.json").read_text())
    del sample["Values"]["RETENTION_TIMER_SCHEDULE"]
    old = tmp_path / "old.settings.json"
    old.write_text(json.dumps(sample))
    code = run_local.main(["--once", "--settings", str(old), "--contacts", "50",
                           "--run-dir", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert "missing app setting RETENTION_TIMER_SCHEDULE" in err
    assert "local.settings.sample.json" in err
    assert not (tmp_path / "run" / "report.json").exists()
