from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devhost.cli import main
from devhost.local_queue import LocalQueueStore
from shared.adapters.servicebus.message_codec import OutboundMessage

REPO = Path(__file__).resolve().parents[2]

CYCLE_APP = textwrap.dedent('''
    import os

    import azure.functions as func

    from devhost.local_queue import LocalQueueStore
    from shared.adapters.servicebus.message_codec import OutboundMessage

    app = func.FunctionApp()

    @app.function_name("Plan")
    @app.timer_trigger(arg_name="timer", schedule="%PLAN_SCHEDULE%")
    def plan(timer: func.TimerRequest) -> None:
        bodies = os.environ["BODIES"].split(",")
        messages = [OutboundMessage(f"b{i}", b.encode()) for i, b in enumerate(bodies)]
        LocalQueueStore(os.environ["LOCAL_QUEUE_DIR"]).send(os.environ["QUEUE"], messages)

    @app.function_name("Apply")
    @app.service_bus_queue_trigger(arg_name="msg", queue_name="%QUEUE%", connection="SB")
    def apply(msg: func.ServiceBusMessage) -> None:
        if msg.get_body() == b"poison":
            raise ValueError("poison batch")
''')


def write_app(tmp_path: Path, name: str, bodies: str) -> Path:
    (tmp_path / f"{name}.py").write_text(CYCLE_APP)
    (tmp_path / "host.json").write_text(json.dumps(
        {"version": "2.0", "extensions": {"serviceBus": {"maxConcurrentCalls": 2}}}))
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {
        "PLAN_SCHEDULE": "0 0 * * * *", "QUEUE": "batches", "SB": "local", "BODIES": bodies,
        "LOCAL_QUEUE_DIR": str(tmp_path / "queues"),
    }}))
    return settings


def run_once(tmp_path: Path, name: str, bodies: str, *extra: str) -> int:
    settings = write_app(tmp_path, name, bodies)
    return main(["run", "--settings", str(settings), "--app", f"{name}.py",
                 "--app-dir", str(tmp_path), "--once", "--no-http", *extra])


class TestRunOnce:
    def test_a_clean_cycle_exits_0(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert run_once(tmp_path, "clean_app", "a,b,c") == 0
        report = json.loads(capsys.readouterr().out)
        assert report["completed"] == 3 and report["functions"]["Plan"]["invocations"] == 1
        assert LocalQueueStore(tmp_path / "queues").counts("batches").active == 0

    def test_a_dead_letter_exits_1_and_can_be_listed_and_replayed(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert run_once(tmp_path, "poison_app", "a,poison", "--max-delivery-count", "2") == 1
        report = json.loads(capsys.readouterr().out)
        assert (report["dead_lettered"], report["completed"]) == (1, 1)
        settings = str(tmp_path / "local.settings.json")

        assert main(["dlq", "list", "batches", "--settings", settings]) == 0
        (line,) = capsys.readouterr().out.splitlines()
        letter = json.loads(line)
        assert (letter["message_id"], letter["dead_letter_reason"],
                letter["dead_letter_error_description"]) == (
            "b1", "MaxDeliveryCountExceeded", "ValueError: poison batch")

        assert main(["dlq", "replay", "batches", "--settings", settings]) == 0
        assert "replayed 1" in capsys.readouterr().out
        store = LocalQueueStore(tmp_path / "queues")
        assert store.dead_letters("batches") == [] and store.counts("batches").active == 1

    def test_bad_settings_exit_2_and_touch_nothing(self, tmp_path: Path) -> None:
        settings = write_app(tmp_path, "unset_app", "a")
        raw = json.loads(settings.read_text())
        del raw["Values"]["QUEUE"]
        settings.write_text(json.dumps(raw))
        assert main(["run", "--settings", str(settings), "--app", "unset_app.py",
                     "--app-dir", str(tmp_path), "--once", "--no-http"]) == 2
        assert not (tmp_path / "queues").exists()


def test_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    settings = write_app(tmp_path, "signal_app", "a")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "run", "--settings", str(settings), "--app",
         "signal_app.py", "--app-dir", str(tmp_path), "--no-http"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "listening on queue batches" in line:
            break
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert json.loads(out)["failures"] == 0
    assert "dev host stopped" in err



def test_dlq_list_shows_the_messages_the_app_moved_aside_with_their_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queues = tmp_path / "queues"
    parked = OutboundMessage("m-7", b"{}", application_properties={
        "DeadLetterReason": "BadRequest", "DeadLetterErrorDescription": "refused",
        "DeliveryCount": 1, "SessionId": "optin-3",
    })
    LocalQueueStore(queues).send("batches-deadletter", [parked])
    assert main(["dlq", "list", "batches", "--queue-dir", str(queues)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    letter = json.loads(line)
    assert (letter["queue"], letter["message_id"], letter["session_id"],
            letter["delivery_count"], letter["dead_letter_reason"],
            letter["dead_letter_error_description"]) == (
        "batches-deadletter", "m-7", "optin-3", 1, "BadRequest", "refused")
