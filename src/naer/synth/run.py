"""Run ``naer synth``: split the population into chunks, simulate them on all cores, write bulk NDJSON.

Chunks are independent (each has its own seed derived from the run's seed and its index), and their
output is merged in chunk order, so the same arguments give byte-identical files whatever the number
of workers. Everything is written to a hidden folder beside the target and moved into place only when
complete: an interrupted or failed run leaves nothing half-written, and ``--force`` replaces an old
data set only once the new one is whole.
"""

from __future__ import annotations

import gzip
import json
import math
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import orjson

from naer import __version__
from naer.errors import UserError
from naer.synth.areas import Municipality, resolve_area
from naer.synth.emit import write_chunk
from naer.synth.engine import ChunkSpec, simulate
from naer.synth.model import Model, load_model
from naer.synth.organizations import build_organizations
from naer.synth.planted import Planted, plant

CHUNK_SIZE = 20_000
TRUTH_FILE = "truth/acute_admission_hazard.csv"
TRUTH_HEADER = "patient_id,year,annual_hazard,probability_12m,frailty,unstable"
PLANTED_FILE = "truth/planted.csv"
PLANTED_HEADER = "patient_id,admission_start,diagnosis,change"
MANIFEST = "manifest.json"
RESOURCE_TYPES = (
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
)
CITIZEN_TYPES = ("Patient", "Encounter", "Condition", "Observation")  # what a chunk writes


@dataclass(frozen=True)
class SynthRequest:
    area: str
    start: date
    end: date
    seed: int
    out: Path
    scale: float = 1.0
    full: tuple[str, ...] = ()  # municipality codes kept at full size whatever ``scale`` says
    at_least: int = 1  # citizens of a scaled municipality at the least (small ones keep peers' numbers)
    force: bool = False
    gzip: bool = False
    workers: int = 1
    chunk_size: int = CHUNK_SIZE
    planted: Planted | None = None  # an effect planted in the data (naer.synth.planted)
    only: tuple[str, ...] = ()  # generate only these municipalities of the area (the same bytes as in it)


@dataclass
class SynthResult:
    area_name: str
    out: Path
    citizens_at_start: int
    counts: dict[str, int] = field(default_factory=dict)  # the full municipalities' when some are scaled
    files: dict[str, str] = field(default_factory=dict)
    sample: dict[str, str] = field(default_factory=dict)  # the scaled municipalities' files (--full)
    sample_counts: dict[str, int] = field(default_factory=dict)
    municipalities: list[dict[str, Any]] = field(default_factory=list)  # code, name, citizens, full
    planted: int = 0  # admissions changed by the planted effect (truth/planted.csv)


def plan(request: SynthRequest, model: Model) -> tuple[str, list[Municipality], list[ChunkSpec], Any]:
    """Check the request and split it into chunks; raise UserError for anything the user can fix."""
    if request.end <= request.start:
        raise UserError(f"--end {request.end} must be after --start {request.start}")
    if not (0 < request.scale <= 10):
        raise UserError(f"--scale must be above 0 and at most 10, not {request.scale}")
    if not (1 <= request.at_least <= 1_000_000):
        raise UserError(f"--at-least must be 1 to 1,000,000 citizens, not {request.at_least}")
    area_name, municipalities = resolve_area(model, request.area)
    full = _full_codes(request.full, municipalities)
    citizens = {m.code: _citizens(m, request, m.code in full) for m in municipalities}
    orgs, practitioners, roles, index = build_organizations(model, municipalities, citizens, request.seed)
    all_codes = sorted(model.areas["municipalities"])
    specs: list[ChunkSpec] = []
    sizes = []
    for m in municipalities:
        total = citizens[m.code]
        n_chunks = math.ceil(total / request.chunk_size)
        base, extra = divmod(total, n_chunks)
        sizes.append([base + (1 if i < extra else 0) for i in range(n_chunks)])
    n_chunks_total = sum(len(s) for s in sizes)
    for m, chunk_sizes in zip(municipalities, sizes, strict=True):
        others = tuple(c for c in all_codes if c != m.code)
        for i, size in enumerate(chunk_sizes):
            specs.append(
                ChunkSpec(
                    municipality=m,
                    orgs=index[m.code],
                    chunk=i,
                    global_index=len(specs),
                    n_chunks=n_chunks_total,
                    size=size,
                    start=request.start,
                    end=request.end,
                    seed=request.seed,
                    other_municipalities=others,
                )
            )
    if request.only:
        specs = [s for s in specs if s.municipality.code in request.only]
    return area_name, municipalities, specs, (orgs, practitioners, roles)


def _citizens(m: Municipality, request: SynthRequest, full: bool) -> int:
    """A municipality's citizens at the start: its population, scaled unless kept full, and at least
    ``at_least`` (but never more than the whole population for that)."""
    if full:
        return m.population
    return max(1, round(m.population * request.scale), min(request.at_least, m.population))


def _full_codes(asked: tuple[str, ...], municipalities: list[Municipality]) -> set[str]:
    """The four-digit codes of ``--full`` (``741`` or ``0741``), each one a municipality of the area."""
    codes = {m.code for m in municipalities}
    full = set()
    for raw in asked:
        code = raw.strip().zfill(4)
        if not (code.isdigit() and len(code) == 4) or code not in codes:
            raise UserError(f"--full {raw!r} is not the code of a municipality in the area")
        full.add(code)
    return full


def sample_name(kind: str, suffix: str) -> str:
    """The file of a type's resources from the scaled municipalities when some are kept full (``--full``):
    read beside ``Kind.ndjson`` by the views (named for the type), left out of a store loaded with only
    the full municipalities' files."""
    return f"{kind}.sample{suffix}"


def check_request(request: SynthRequest) -> None:
    """Raise UserError for any problem with the request, before any work or output starts."""
    plan(request, load_model())
    _check_output(request.out, request.force)


def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"output folder {out} is not empty: choose another or pass --force to replace it")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {parent}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK):
        raise UserError(f"output folder {out}: {parent} is not writable")


class _Sink:
    """Append lines per resource type to one chunk's part files."""

    def __init__(self, folder: Path, compress: bool) -> None:
        self.folder = folder
        self.compress = compress
        self.handles: dict[str, IO[bytes]] = {}

    def __call__(self, kind: str, data: bytes | memoryview) -> None:
        fh = self.handles.get(kind)
        if fh is None:
            path = self.folder / f"{kind}.part"
            raw: IO[bytes] = path.open("wb")
            if self.compress:
                fh = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0))
            else:
                fh = raw
            self.handles[kind] = fh
        fh.write(data)

    def close(self) -> None:
        for fh in self.handles.values():
            fh.close()
            if isinstance(fh, gzip.GzipFile) and fh.fileobj is not None:
                fh.fileobj.close()


def _append(source: Path, target: IO[bytes]) -> None:
    """Append a part file in the kernel (copy_file_range) where it can, else by reading it."""
    target.flush()
    with source.open("rb") as src:
        size = os.fstat(src.fileno()).st_size
        try:
            copied = 0
            while copied < size:
                n = os.copy_file_range(src.fileno(), target.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
            if copied == size:
                return
            src.seek(copied)
        except OSError:
            src.seek(0)
        shutil.copyfileobj(src, target, length=1 << 20)


def _names(model: Model) -> dict[str, str]:
    return {code: m["name"] for code, m in model.areas["municipalities"].items()}


def _work(args: tuple[ChunkSpec, str, bool, Planted | None]) -> tuple[int, dict[str, int]]:
    spec, folder, compress, planted = args
    model = load_model()
    events = simulate(model, spec)
    changed = plant(events, spec, planted) if planted is not None else []
    part = Path(folder) / f"{spec.global_index:05d}"
    part.mkdir()
    sink = _Sink(part, compress)
    try:
        counts = write_chunk(model, spec, events, sink, _names(model))
        if changed:
            day0 = np.datetime64(spec.start, "m")
            prefix = f"pat-{spec.municipality.code}-{spec.chunk}-"
            rows = "".join(f"{prefix}{c.person:06d},{day0 + c.start},{c.code},{c.change}\n" for c in changed)
            sink("planted", rows.encode())
            counts["planted"] = len(changed)
    finally:
        sink.close()
    return spec.global_index, counts


def _results(
    specs: list[ChunkSpec], folder: Path, compress: bool, workers: int, planted: Planted | None
) -> Iterator[tuple[int, dict[str, int]]]:
    jobs = [(s, str(folder), compress, planted) for s in specs]
    if workers <= 1 or len(specs) <= 1:
        yield from map(_work, jobs)
        return
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes=min(workers, len(specs))) as pool:
        yield from pool.imap(_work, jobs)


def synthesize(request: SynthRequest, on_progress: Callable[[int, int], None] | None = None) -> SynthResult:
    """Generate the data set described by ``request``; ``on_progress(done, total)`` counts citizens."""
    model = load_model()
    area_name, municipalities, specs, (orgs, practitioners, roles) = plan(request, model)
    _check_output(request.out, request.force)
    out = request.out
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.naer-tmp-", dir=out.resolve().parent))
    suffix = ".ndjson.gz" if request.gzip else ".ndjson"
    if not specs:
        raise UserError("none of the asked municipalities is in the area")
    result = SynthResult(area_name, out, sum(s.size for s in specs))
    try:
        (tmp / "parts").mkdir()
        (tmp / "truth").mkdir()
        full = _full_codes(request.full, municipalities)
        split = bool(full) and any(s.municipality.code not in full for s in specs)
        finals: dict[str, IO[bytes]] = {}
        samples: dict[str, IO[bytes]] = {}
        for kind in RESOURCE_TYPES:
            finals[kind] = (tmp / f"{kind}{suffix}").open("wb")
            if split and kind in CITIZEN_TYPES:
                samples[kind] = (tmp / sample_name(kind, suffix)).open("wb")
        sample_counts: dict[str, int] = {}
        truth_name = TRUTH_FILE + (".gz" if request.gzip else "")
        finals["truth"] = (tmp / truth_name).open("wb")
        header = (TRUTH_HEADER + "\n").encode()
        finals["truth"].write(gzip.compress(header, mtime=0) if request.gzip else header)
        if request.planted is not None:
            finals["planted"] = (tmp / PLANTED_FILE).open("wb")
            planted_header = (PLANTED_HEADER + "\n").encode()
            finals["planted"].write(
                gzip.compress(planted_header, mtime=0) if request.gzip else planted_header
            )
        for kind, resources in (
            ("Organization", orgs),
            ("Practitioner", practitioners),
            ("PractitionerRole", roles),
        ):
            data = b"".join(orjson.dumps(r) + b"\n" for r in resources)
            finals[kind].write(gzip.compress(data, compresslevel=1, mtime=0) if request.gzip else data)
            result.counts[kind] = len(resources)
        total = result.citizens_at_start
        done = 0
        by_index = {s.global_index: s for s in specs}  # a chunk's index over the whole area (``only``)
        for index, counts in _results(specs, tmp / "parts", request.gzip, request.workers, request.planted):
            part = tmp / "parts" / f"{index:05d}"
            sampled = split and by_index[index].municipality.code not in full
            for kind, n in counts.items():
                if sampled and kind in samples:
                    _append(part / f"{kind}.part", samples[kind])
                    sample_counts[kind] = sample_counts.get(kind, 0) + n
                else:
                    _append(part / f"{kind}.part", finals[kind])
                    result.counts[kind] = result.counts.get(kind, 0) + n
            shutil.rmtree(part)
            done += by_index[index].size
            if on_progress:
                on_progress(done, total)
        for fh in [*finals.values(), *samples.values()]:
            fh.close()
        (tmp / "parts").rmdir()
        for kind in RESOURCE_TYPES:
            if not result.counts.get(kind):
                (tmp / f"{kind}{suffix}").unlink()
            if kind in samples and not sample_counts.get(kind):
                (tmp / sample_name(kind, suffix)).unlink()
        truth_rows = result.counts.pop("truth", 0)
        result.planted = result.counts.pop("planted", 0)
        result.files = {k: f"{k}{suffix}" for k in RESOURCE_TYPES if result.counts.get(k)}
        result.sample = {k: sample_name(k, suffix) for k in RESOURCE_TYPES if sample_counts.get(k)}
        result.sample_counts = {k: sample_counts[k] for k in result.sample}
        result.municipalities = _sizes(specs, full)
        _write_manifest(tmp, request, area_name, result, truth_name, truth_rows, full)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _sizes(specs: list[ChunkSpec], full: set[str]) -> list[dict[str, Any]]:
    """Each municipality's citizens at the start and whether it is whole (for the pages' data note)."""
    found: dict[str, dict[str, Any]] = {}
    populations: dict[str, int] = {}
    for spec in specs:
        m = spec.municipality
        entry = found.setdefault(m.code, {"code": m.code, "name": m.name, "citizens": 0})
        entry["citizens"] += spec.size
        populations[m.code] = m.population
    for entry in found.values():
        whole = entry["code"] in full or not full
        entry["full"] = whole and entry["citizens"] >= populations[entry["code"]]
    return list(found.values())


def _write_manifest(
    folder: Path,
    request: SynthRequest,
    area_name: str,
    result: SynthResult,
    truth_name: str,
    truth_rows: int,
    full: set[str],
) -> None:
    """A FHIR Bulk Data style manifest; no clock time in it, so reruns stay byte-identical. ``full``: the
    checked codes of --full."""
    manifest = {
        "transactionTime": f"{request.end.isoformat()}T23:59:59+01:00",
        "request": (
            f"naer synth --area {request.area} --start {request.start} --end {request.end} "
            f"--seed {request.seed} --scale {request.scale:g}"
            + "".join(f" --full {code}" for code in request.full)
            + (f" --at-least {request.at_least}" if request.at_least > 1 else "")
        ),
        "requiresAccessToken": False,
        "output": [
            *({"type": k, "url": v, "count": result.counts[k]} for k, v in result.files.items()),
            *({"type": k, "url": v, "count": result.sample_counts[k]} for k, v in result.sample.items()),
        ],
        "error": [],
        "naer": {
            "generator": f"naer {__version__}",
            "area": request.area,
            "areaName": area_name,
            "start": request.start.isoformat(),
            "end": request.end.isoformat(),
            "seed": request.seed,
            "scale": request.scale,
            "full": sorted(full),
            "atLeast": request.at_least,
            "citizensAtStart": result.citizens_at_start,
            "municipalities": result.municipalities,
            "synthetic": True,
            "truth": {
                "url": truth_name,
                "rows": truth_rows,
                "description": "true yearly acute-admission hazard per citizen (not FHIR)",
            },
        },
    }
    if request.planted is not None:
        p = request.planted
        manifest["naer"]["planted"] = {  # type: ignore[index]
            "url": PLANTED_FILE,
            "rows": result.planted,
            "municipalities": sorted(p.municipalities),
            "minAge": p.min_age,
            "start": p.start.isoformat(),
            "end": p.end.isoformat(),
            "change": p.change,
            "share": p.share,
            "diagnoses": list(p.diagnoses),
            "description": "the acute admissions the planted effect changed (not FHIR)",
        }
    (folder / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
