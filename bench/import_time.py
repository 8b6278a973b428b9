"""How long ``import function_app`` takes versus importing its third-party dependencies.

Each figure is the median of fresh interpreters (no warm module cache), so it is what a cold
Functions worker pays at indexing time. Prints one JSON object.

With ``--telemetry``, also what a worker with ``APPLICATIONINSIGHTS_CONNECTION_STRING`` pays on
top, once, when its services are first built: importing OpenTelemetry and configuring it (to a
local address that refuses, so nothing leaves the machine). The import itself is the same with
or without the setting.

    python -m bench.import_time [--runs 7] [--telemetry]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPENDENCIES = "import azure.functions, azure.data.tables, msal, requests"
CONFIGURE_TELEMETRY = (
    "import os; from shared.adapters.telemetry import configure_telemetry; "
    "assert configure_telemetry(os.environ)"
)
# Port 9 (discard) refuses on loopback: the exporters' sends fail at once, live metrics included.
LOCAL_CONNECTION_STRING = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
    "IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/"
)


def _time_import(statement: str, extra_env: dict[str, str] | None = None) -> float:
    script = (f"import time; t = time.perf_counter(); {statement}; "
              "print(time.perf_counter() - t, flush=True)")
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **(extra_env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def _time_with_telemetry() -> float:
    with tempfile.TemporaryDirectory() as scratch:
        # The exporters keep unsent telemetry under TMPDIR; statsbeat would call Microsoft.
        environ = {"APPLICATIONINSIGHTS_CONNECTION_STRING": LOCAL_CONNECTION_STRING,
                   "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", "TMPDIR": scratch}
        return _time_import(f"import function_app; {CONFIGURE_TELEMETRY}", environ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--telemetry", action="store_true",
                        help="also time the first build's telemetry set-up with the setting")
    args = parser.parse_args()
    runs = args.runs
    dependencies = statistics.median(_time_import(DEPENDENCIES) for _ in range(runs))
    app = statistics.median(_time_import("import function_app") for _ in range(runs))
    figures: dict[str, object] = {
        "runs": runs,
        "dependencies_ms": round(dependencies * 1000, 1),
        "function_app_ms": round(app * 1000, 1),
        "ratio": round(app / dependencies, 2),
    }
    if args.telemetry:
        with_telemetry = statistics.median(_time_with_telemetry() for _ in range(runs))
        figures["function_app_and_telemetry_ms"] = round(with_telemetry * 1000, 1)
        figures["telemetry_ms"] = round((with_telemetry - app) * 1000, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
