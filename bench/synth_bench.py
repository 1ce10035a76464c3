"""Benchmark `naer synth`: wall time, peak memory of the whole process tree, resources per second.

    python bench/synth_bench.py                       # Samsø, then Region Midtjylland at 10 %
    python bench/synth_bench.py --area region-midt --scale 1 --out /big/disk/region

The targets (issue 2): Samsø in under 30 s; Region Midtjylland (1.33 million citizens, ten years) in
under 15 minutes and 6 GB peak memory on a 2-core machine. Figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from naer.settings import get_settings
from naer.synth.run import SynthRequest, synthesize


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (Linux)."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class PeakMemory:
    """Samples the process tree's RSS every 0.2 s in a thread; ``peak`` is the highest sum seen."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss_bytes(os.getpid()))
            self._stop.wait(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(area: str, scale: float, out: Path, workers: int, gzip: bool) -> dict[str, float]:
    request = SynthRequest(
        area,
        date(2015, 1, 1),
        date(2024, 12, 31),
        1,
        out,
        scale=scale,
        force=True,
        workers=workers,
        gzip=gzip,
    )
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30:
            print(f"  {done:,}/{total:,} citizens", flush=True)
            last[0] = now

    began = time.perf_counter()
    with PeakMemory() as mem:
        result = synthesize(request, on_progress=progress)
    seconds = time.perf_counter() - began
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    resources = sum(result.counts.values())
    figures = {
        "citizens_at_start": result.citizens_at_start,
        "resources": resources,
        "seconds": seconds,
        "resources_per_second": resources / seconds,
        "peak_memory_gb": mem.peak / 1e9,
        "output_gb": size / 1e9,
    }
    print(
        f"{area} scale {scale:g} workers {workers}{' gzip' if gzip else ''}: "
        f"{result.citizens_at_start:,} citizens, {resources:,} resources in {seconds:.1f} s "
        f"({resources / seconds:,.0f}/s), peak memory {mem.peak / 1e9:.2f} GB, output {size / 1e9:.2f} GB",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--area", help="one area only (default: samsoe, then region-midt at --scale)")
    parser.add_argument("--scale", type=float, default=0.1, help="scale of the region run (default 0.1)")
    parser.add_argument("--workers", type=int, default=get_settings().workers)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one, deleted after)")
    parser.add_argument("--keep", action="store_true", help="keep the output")
    args = parser.parse_args()
    runs = [(args.area, args.scale)] if args.area else [("samsoe", 1.0), ("region-midt", args.scale)]
    for area, scale in runs:
        base = args.out or Path(tempfile.mkdtemp(prefix="naer-bench-"))
        out = base / area if args.out is None else base
        try:
            run(area, scale, out, args.workers, args.gzip)
        finally:
            if not args.keep:
                shutil.rmtree(out if args.out else base, ignore_errors=True)


if __name__ == "__main__":
    main()
