"""``python -m devhost run|dlq``: run the app locally, or inspect and replay dead letters."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from devhost.host import DEFAULT_QUEUE_DIR, DevHost, HostOptions
from devhost.local_publisher import parked_dead_letters
from devhost.local_queue import LocalQueueStore, QueueOptions
from devhost.local_settings import load_local_settings
from shared.adapters.servicebus.message_codec import dead_letter_queue
from shared.errors import AppError

logger = logging.getLogger("devhost")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the function app until Ctrl-C")
    run.add_argument("--settings", default="local.settings.json", help="local settings file")
    run.add_argument("--app", default="function_app", help="module name or .py path of the app")
    run.add_argument("--app-dir", default=".", help="folder of the app and its host.json")
    run.add_argument("--port", type=int, default=None, help="HTTP port (default LocalHttpPort)")
    run.add_argument("--no-http", action="store_true", help="do not serve HTTP functions")
    run.add_argument("--once", action="store_true",
                     help="run every timer once, wait until the queues are empty, then exit"
                     " (status 1 if anything failed or was dead-lettered)")
    run.add_argument("--idle-timeout", type=float, default=600.0,
                     help="with --once: longest wait for the queues to empty (seconds)")
    run.add_argument("--max-delivery-count", type=int, default=None)
    run.add_argument("--lock-duration", type=float, default=None, help="seconds")
    for name, help_text in (("list", "show the dead letters of a queue"),
                            ("replay", "move dead letters back to their queue")):
        dlq = commands.add_parser(f"dlq-{name}", help=help_text)
        dlq.add_argument("queue")
        dlq.add_argument("--settings", default="local.settings.json")
        dlq.add_argument("--queue-dir", default=None, help="default LOCAL_QUEUE_DIR or .run/queues")
        if name == "replay":
            dlq.add_argument("--message-id", action="append", dest="message_ids",
                             help="replay only this message (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) >= 2 and args[0] == "dlq":  # "dlq list Q" reads better than "dlq-list Q"
        args = [f"dlq-{args[1]}", *args[2:]]
    parsed = build_parser().parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    try:
        if parsed.command == "run":
            return _run(parsed)
        return _dead_letters(parsed)
    except AppError as error:
        logger.error("%s", error)
        return 2


def _run(args: argparse.Namespace) -> int:
    default_queue_options = None
    if args.max_delivery_count is not None or args.lock_duration is not None:
        default_queue_options = QueueOptions(
            max_delivery_count=args.max_delivery_count or 10,
            lock_duration_s=args.lock_duration or 60.0,
        )
    options = HostOptions(http=not args.no_http, http_port=args.port,
                          timers=not args.once, default_queue_options=default_queue_options)
    host = DevHost.from_files(args.settings, script=args.app, app_dir=args.app_dir,
                              options=options)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    host.start()
    try:
        if args.once:
            for name in host.timers.names:
                host.trigger_timer(name)
            if not host.wait_idle(args.idle_timeout):
                logger.error("the queues did not empty within %.0f s", args.idle_timeout)
                return 1
        else:
            while not stopping.wait(1.0):
                pass
    finally:
        host.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    snapshot = host.counters.snapshot()
    print(json.dumps(snapshot, indent=2))
    return 1 if snapshot["failures"] or snapshot["dead_lettered"] else 0


def _dead_letters(args: argparse.Namespace) -> int:
    directory = args.queue_dir
    if directory is None:
        path = Path(args.settings)
        values = load_local_settings(path).values if path.exists() else {}
        directory = values.get("LOCAL_QUEUE_DIR") or DEFAULT_QUEUE_DIR
    store = LocalQueueStore(directory)
    if args.command == "dlq-replay":
        moved = store.replay(args.queue, args.message_ids)
        print(f"replayed {moved} message(s) to {args.queue}")
        return 0
    # The broker's dead letters, then those the app moved aside itself (its "-deadletter" queue:
    # Service Bus gives a Python function no handle to dead-letter the message it holds).
    letters = [(args.queue, letter) for letter in store.dead_letters(args.queue)]
    letters += [(dead_letter_queue(args.queue), letter)
                for letter in parked_dead_letters(store, args.queue)]
    for queue, letter in letters:
        print(json.dumps({
            "queue": queue,
            "message_id": letter.message_id,
            "session_id": letter.session_id,
            "sequence_number": letter.sequence_number,
            "enqueued_time_utc": datetime.fromtimestamp(letter.enqueued_at, UTC).isoformat(),
            "delivery_count": letter.delivery_count,
            "dead_letter_reason": letter.dead_letter_reason,
            "dead_letter_error_description": letter.dead_letter_description,
            "application_properties": letter.application_properties,
            "body_bytes": len(letter.body),
        }))
    print(f"{len(letters)} dead letter(s) on {args.queue}", file=sys.stderr)
    return 0
