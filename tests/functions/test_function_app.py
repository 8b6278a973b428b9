"""The app's function manifest and its import-time behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Every function the app registers: name -> (trigger type, binding expressions, auth level).
EXPECTED = {
    "SyncTimer": ("timerTrigger", {"schedule": "%SYNC_TIMER_SCHEDULE%"}, None),
    "PurgeOldState": ("timerTrigger", {"schedule": "%RETENTION_TIMER_SCHEDULE%"}, None),
    "ApplyOptInBatch": (
        "serviceBusTrigger",
        {"queueName": "%OPTIN_QUEUE_NAME%", "connection": "ServiceBusConnection",
         "isSessionsEnabled": True},
        None,
    ),
    # The ribbon API validates the user's token in code: anonymous at the host.
    "ListPrograms": ("httpTrigger", {"route": "programs", "methods": ["GET"]}, "ANONYMOUS"),
    "EnrolRecords": ("httpTrigger", {"route": "enrolments", "methods": ["POST"]}, "ANONYMOUS"),
    "EngagementTimeline": ("httpTrigger", {"route": "timeline", "methods": ["GET"]},
                           "ANONYMOUS"),
    "ApplyEngagementBatch": (
        "serviceBusTrigger",
        {"queueName": "%ENGAGEMENT_QUEUE_NAME%", "connection": "ServiceBusConnection",
         "isSessionsEnabled": True},
        None,
    ),
    "ApplySuppressionBatch": (
        "serviceBusTrigger",
        {"queueName": "%SUPPRESSION_QUEUE_NAME%", "connection": "ServiceBusConnection",
         "isSessionsEnabled": True},
        None,
    ),
}


def _manifest() -> dict[str, dict[str, object]]:
    # get_functions() may be called once per app object, so the manifest is read in a fresh
    # interpreter (which also proves the import needs no settings).
    script = textwrap.dedent(
        """
        import json, function_app
        out = {}
        for fn in function_app.app.get_functions():
            trigger = fn.get_trigger()
            out[fn.get_function_name()] = {
                "trigger": trigger.get_binding_name(),
                "bindings": [b.get_dict_repr() for b in fn.get_bindings()],
            }
        print(json.dumps(out, default=str))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={"PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_function_has_the_expected_trigger_bindings_and_auth_level() -> None:
    manifest = _manifest()
    assert set(manifest) == set(EXPECTED)
    for name, (trigger, expressions, auth_level) in EXPECTED.items():
        function = manifest[name]
        assert function["trigger"] == trigger
        trigger_binding = next(b for b in function["bindings"] if b["type"] == trigger)
        for key, value in expressions.items():
            assert trigger_binding[key] == value, (name, key)
        assert trigger_binding.get("authLevel") == auth_level


def test_timers_do_not_run_on_startup() -> None:
    for function in _manifest().values():
        for binding in function["bindings"]:
            if binding["type"] == "timerTrigger":
                assert not binding.get("runOnStartup")


def test_function_app_imports_with_an_empty_environment_and_does_no_io() -> None:
    script = textwrap.dedent(
        """
        import sys
        events = []
        def audit(event, args):
            # urllib3 binds a throw-away socket to ::1 at import to probe IPv6 support; that is
            # not I/O. Reaching anything (DNS, connect, send) or starting a process is.
            network = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                       "socket.sendto", "socket.sendmsg")
            if event in network or event.startswith("subprocess.") or event == "os.system":
                events.append(event)
        sys.addaudithook(audit)
        import function_app
        assert function_app.app is not None
        print("EVENTS", sorted(set(events)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={"PATH": "/usr/bin:/bin"},
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "EVENTS []" in result.stdout
