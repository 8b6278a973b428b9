"""The benchmark's memory sampler reports the process's own memory, as JSON lines."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.memory_samples import MemorySampler


def test_a_sample_holds_the_resident_size_and_the_heap_split() -> None:
    sample = MemorySampler("unused").sample()

    assert sample["rss_mb"] > 1
    assert sample["python_blocks"] > 0
    # glibc's figures, on the Linux machines this runs on: the heap is in use plus kept free.
    assert abs(sample["heap_mb"] - sample["heap_in_use_mb"] - sample["heap_free_mb"]) <= 0.2


def test_the_sampler_appends_a_line_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "memory.jsonl"
    sampler = MemorySampler(path, interval_s=0.01)
    sampler.start()
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            lines = path.read_text().splitlines() if path.exists() else []
            if len(lines) >= 3:
                break
            time.sleep(0.01)
    finally:
        sampler.stop()
    samples = [json.loads(line) for line in lines[:3]]
    assert len(samples) == 3
    assert samples[0]["t"] <= samples[1]["t"] <= samples[2]["t"]
