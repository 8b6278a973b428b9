"""The connector on its own: the dev host running this repo's ``function_app`` until SIGTERM.

``python -m bench.connector_process --settings F --report R [--ready M] [--lock-duration S]
[--memory-samples FILE]``

Timers fire on their schedule and queue triggers run; on SIGTERM or SIGINT the host stops taking
work, lets running invocations finish, and writes ``R``: the process's own peak resident memory
(``VmHWM``, so the emulators, Azurite and the benchmark that started it are not in it) and the
host's invocation counters. A SIGKILL writes nothing, as a crash would.

The signal handlers are installed before anything slow is imported, and ``M`` is written once they
are: a stop sent after ``M`` exists always ends with the report, even during start-up.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import resource
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from bench.memory_samples import MemorySampler, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]


def own_peak_rss_mb() -> float:
    """This process's own peak resident size (``VmHWM``): a connector started by a large
    benchmark process would report the benchmark's size as its own in ``ru_maxrss``, which is
    only the fallback where there is no ``/proc``."""
    peak = peak_rss_mb()
    if peak is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB
    return peak


def main(argv: list[str] | None = None) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    parser = argparse.ArgumentParser(prog="python -m bench.connector_process", description=__doc__)
    parser.add_argument("--settings", required=True, help="local settings file")
    parser.add_argument("--report", required=True, help="where to write the exit report (JSON)")
    parser.add_argument("--ready", help="a file to create once a stop is sure to be reported")
    parser.add_argument("--memory-samples", help="append memory samples (JSON lines) to this"
                        " file every 0.5 s (see bench.memory_samples)")
    parser.add_argument("--lock-duration", type=float, default=None,
                        help="queue lock duration in seconds (short: killed deliveries come"
                        " back soon)")
    args = parser.parse_args(argv)
    if args.ready:
        Path(args.ready).touch()
    # Imported after the handlers: loading the app takes a while.
    from devhost.host import DevHost, HostOptions
    from devhost.local_queue import QueueOptions

    if args.memory_samples:
        MemorySampler(args.memory_samples).start()
    faulthandler.enable()  # a crash in native code leaves its threads' stacks in the log
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)-10s %(message)s")
    for noisy in ("azure", "urllib3", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    queue_options = None
    if args.lock_duration is not None:
        queue_options = QueueOptions(lock_duration_s=args.lock_duration)
    host = DevHost.from_files(
        args.settings, script="function_app", app_dir=ROOT,
        options=HostOptions(http=False, default_queue_options=queue_options),
    )
    host.start()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        host.stop(timeout_s=120.0)
    report = {"peak_rss_mb": round(own_peak_rss_mb(), 1), "functions": host.counters.snapshot()}
    Path(args.report).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
