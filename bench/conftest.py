"""Micro-benchmarks (pytest-benchmark). Run them explicitly: ``python -m pytest bench --benchmark-only``.

They live outside ``tests/`` (pyproject's ``testpaths``), so the normal test run never collects them.
The ``per_item`` fixture turns a finished benchmark's median into per-packet / per-byte figures in
``benchmark.extra_info`` (shown with ``--benchmark-json`` and in saved runs) and in the test's output.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def per_item(benchmark):
    def record(items: int, item_bytes: int = 0) -> None:
        stats = getattr(benchmark, "stats", None)
        if stats is None:  # --benchmark-disable: nothing was timed
            return
        median_s = stats.stats.median
        ns = median_s / items * 1e9
        benchmark.extra_info["ns_per_packet"] = round(ns, 1)
        line = f"{benchmark.name}: {ns:.1f} ns/packet"
        if item_bytes:
            mb_s = items * item_bytes / median_s / 1e6
            benchmark.extra_info["MB_per_s"] = round(mb_s, 1)
            line += f", {mb_s:.0f} MB/s"
        print("\n" + line)

    return record
