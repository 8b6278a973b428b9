"""How long ``import function_app`` takes versus importing its third-party dependencies.

Each figure is the median of fresh interpreters (no warm module cache), so it is what a cold
Functions worker pays at indexing time. Prints one JSON object.

    python -m bench.import_time [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPENDENCIES = "import azure.functions, azure.data.tables, msal, requests"


def _time_import(statement: str) -> float:
    script = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    dependencies = statistics.median(_time_import(DEPENDENCIES) for _ in range(runs))
    app = statistics.median(_time_import("import function_app") for _ in range(runs))
    print(
        json.dumps(
            {
                "runs": runs,
                "dependencies_ms": round(dependencies * 1000, 1),
                "function_app_ms": round(app * 1000, 1),
                "ratio": round(app / dependencies, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
