"""What the console prints: tables a person reads at a glance, JSON for scripts, and progress.

Results go to stdout, progress and notes to stderr, so ``--json`` output stays parseable while a
long read shows that it is alive. Colour only on a terminal, and never with ``NO_COLOR`` set
(https://no-color.org): piped into a file or another program, the text stays plain.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import NamedTuple, TextIO

# ANSI SGR codes per meaning, so commands say what a cell is, not how it looks.
_STYLES = {"ok": "32", "bad": "1;31", "warn": "33", "dim": "2", "bold": "1"}
_BAR_WIDTH = 12
_NUMBER = re.compile(r"-?[\d,]+(\.\d+)?")
_REDRAW_S = 0.1


class Styled(NamedTuple):
    """A cell with a meaning: ``ok``, ``bad``, ``warn``, ``dim`` or ``bold``."""

    text: str
    style: str


Cell = str | int | float | Styled | None


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    return stream.isatty() and not environ.get("NO_COLOR")


def cell_text(cell: Cell) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, Styled):
        return cell.text
    if isinstance(cell, bool):
        return "yes" if cell else "no"
    if isinstance(cell, int):
        return f"{cell:,}"
    if isinstance(cell, float):
        return f"{cell:,.1f}"
    return cell


def _numeric(cells: Sequence[Cell]) -> bool:
    """A column of numbers (blanks allowed) is aligned to the right."""
    values = [cell.text if isinstance(cell, Styled) and _NUMBER.fullmatch(cell.text) else cell
              for cell in cells if cell is not None]
    return bool(values) and all(
        (isinstance(cell, int | float) and not isinstance(cell, bool))
        or (isinstance(cell, str) and _NUMBER.fullmatch(cell) is not None) for cell in values)


def _json_default(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class Output:
    """One command's stdout and stderr."""

    def __init__(
        self, stdout: TextIO, stderr: TextIO, *, as_json: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.as_json = as_json
        environ = os.environ if environ is None else environ
        self.colour = use_colour(stdout, environ)
        self._live_progress = use_colour(stderr, environ) or stderr.isatty()

    def paint(self, text: str, style: str | None) -> str:
        if not self.colour or style is None or style not in _STYLES:
            return text
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m"

    def line(self, text: str = "", style: str | None = None) -> None:
        print(self.paint(text, style), file=self.stdout)

    def title(self, text: str) -> None:
        self.line(text, "bold")

    def note(self, text: str) -> None:
        """A remark for the person at the terminal (stderr: never mixed into results)."""
        print(text, file=self.stderr)

    def json(self, payload: object) -> None:
        print(json.dumps(payload, indent=2, ensure_ascii=False, default=_json_default),
              file=self.stdout)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        """Columns padded to their widest cell; numbers to the right, text to the left."""
        texts = [[cell_text(cell) for cell in row] for row in rows]
        widths = [max([len(header), *(len(row[i]) for row in texts)])
                  for i, header in enumerate(headers)]
        numeric = [_numeric([row[i] for row in rows]) for i in range(len(headers))]
        self.line("  ".join(self.paint(h.rjust(w) if right else h.ljust(w), "bold")
                            for h, w, right in zip(headers, widths, numeric, strict=True))
                  .rstrip())
        self.line("  ".join("-" * w for w in widths))
        for row, text in zip(rows, texts, strict=True):
            cells = []
            for cell, value, width, right in zip(row, text, widths, numeric, strict=True):
                padded = value.rjust(width) if right else value.ljust(width)
                cells.append(self.paint(padded, cell.style if isinstance(cell, Styled) else None))
            self.line("  ".join(cells).rstrip())

    def pairs(self, rows: Sequence[tuple[str, str]], *, width: int = 100) -> None:
        """``name  value`` lines, values wrapped under themselves (one record's details)."""
        indent = max((len(name) for name, _ in rows), default=0) + 2
        for name, value in rows:
            lines = textwrap.wrap(value, max(width - indent, 20)) or [""]
            self.line(self.paint(name.ljust(indent), "bold") + lines[0])
            for more in lines[1:]:
                self.line(" " * indent + more)

    def progress(self, label: str) -> Progress:
        return Progress(self.stderr, label, live=self._live_progress)


class Progress:
    """An indeterminate progress bar with counters, redrawn in place on a terminal.

    The sources page without telling how much there is, so the bar shows that reading goes on
    and the counters show how far. Without a terminal only the final line is written.
    """

    def __init__(
        self, stream: TextIO, label: str, *, live: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._label = label
        self._live = live
        self._clock = clock
        self._started = clock()
        self._drawn = 0.0
        self.counts: dict[str, int] = {}

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount
        self._draw()

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live:
            self._stream.write("\r\x1b[K")
        outcome = "interrupted" if exc_type is not None else "done"
        summary = self._summary()
        self._stream.write(f"{self._label}: {summary} ({outcome} in {self.seconds:.1f}s)\n"
                           if summary else f"{self._label}: {outcome} in {self.seconds:.1f}s\n")
        self._stream.flush()

    @property
    def seconds(self) -> float:
        return self._clock() - self._started

    def _summary(self) -> str:
        return ", ".join(f"{count:,} {name}" for name, count in self.counts.items())

    def _draw(self, *, force: bool = False) -> None:
        now = self._clock()
        if not self._live or (not force and now - self._drawn < _REDRAW_S):
            return
        self._drawn = now
        span = _BAR_WIDTH - 3
        step = int((now - self._started) * 8) % (2 * span)
        position = step if step < span else 2 * span - step
        bar = " " * position + "===" + " " * (span - position)
        self._stream.write(f"\r\x1b[K{self._label} [{bar}] {self._summary() or 'starting'} "
                           f"{now - self._started:.1f}s")
        self._stream.flush()
