"""Cohort runs: many patients in, one result or one error out for each, in input order.

The same rule files serve the single patient and the cohort: a chunk of patients goes through
:meth:`myeloma_kg.recommend.Engine.run` as one batch (one store pass, one query pass for all).
Nothing is lost: every input document ends as exactly one result line or one error line, each
carrying its input index, source and position.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from .errors import DataError, MyelomaKGError, PatientInvalidError
from .io import (
    JSONL_SUFFIXES,
    RawDocument,
    iter_jsonl_lines,
    parse_jsonl_line,
    read_documents,
)

# Patients reasoned together in one store pass. Two workers on 2 cores ran ~8 % faster with chunks of 50
# than of 200 (four paired 5,000-patient runs, session 15; 25 and 100 were no better than 50), and a
# worker's memory grows with its chunk (benchmarks/README.md).
DEFAULT_CHUNK = 50


@dataclass
class Item:
    """One input document with its place in the run.

    A JSON Lines document travels as its line of text (``line``: source, line number, text) and is
    decoded where it is processed, so that the parent process of a cohort run only reads lines.
    """

    index: int
    raw: RawDocument | None = None
    line: tuple[str, int, str] | None = None

    def document(self) -> RawDocument:
        """The document, decoding its JSON line on first use."""
        if self.raw is None:
            assert self.line is not None
            source, lineno, text = self.line
            self.raw = parse_jsonl_line(text, source, lineno)
            self.line = None
        return self.raw


@dataclass
class Outcome:
    """The result or the error of one input document (exactly one of the two is set)."""

    index: int
    source: str
    position: int
    patient: str | None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def line(self) -> str:
        """The JSON line written to the results or errors file (without its newline)."""
        return self.line_bytes()[:-1].decode("utf-8")

    def line_bytes(self) -> bytes:
        """:meth:`line` as UTF-8 bytes ending in a newline, the form a cohort run passes between processes
        and writes."""
        if self.result is not None:
            payload = {"index": self.index, "source": self.source, "position": self.position, **self.result}
        else:
            error = dict(self.error or {})
            location = error.pop("source", None)
            payload = {"index": self.index, "source": self.source, "position": self.position,
                       "patient": self.patient or error.get("patient"), **{k: v for k, v in error.items() if k != "patient"}}
            if location:
                payload["location"] = location
        # orjson: ~3x faster than json.dumps on these 60-80 KB results (UTF-8, keys in insertion order); the
        # newline is written with the line, so that the parent joins the lines without copying each one again
        return orjson.dumps(payload, option=orjson.OPT_APPEND_NEWLINE)


@dataclass
class RunSummary:
    """Counts of a cohort run."""

    total: int = 0
    results: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def text(self) -> str:
        """One line for the terminal."""
        rate = (self.results + self.errors) / self.seconds if self.seconds else 0.0
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(self.error_kinds.items()))
        skipped = f", {self.skipped} already done (resumed)" if self.skipped else ""
        return (f"{self.total} patients: {self.results} results, {self.errors} errors{skipped}"
                f"{' (' + kinds + ')' if kinds else ''} in {self.seconds:.1f} s ({rate:.0f}/s)")


def _input_files(path: Path) -> Iterator[Path]:
    """The files a path stands for, in the order :func:`myeloma_kg.io.read_documents` reads them."""
    if path.is_dir():
        from .io import JSON_SUFFIXES, RDF_FORMATS, YAML_SUFFIXES

        suffixes = JSON_SUFFIXES | YAML_SUFFIXES | JSONL_SUFFIXES | set(RDF_FORMATS)
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix.lower() in suffixes:
                yield child
    else:
        yield path


def iter_items(inputs: Iterable[str | Path], *, lazy: bool = False) -> Iterator[Item]:
    """Number every document of every input (files, directories, JSON Lines) from 0, in order.

    :param lazy: leave JSON Lines documents undecoded (see :class:`Item`); files are read line by line.
    """
    index = 0
    for path in inputs:
        for file in _input_files(Path(path)):
            if lazy and file.suffix.lower() in JSONL_SUFFIXES:
                for lineno, text in iter_jsonl_lines(file):
                    yield Item(index, line=(str(file), lineno, text))
                    index += 1
                continue
            for raw in read_documents(file):
                yield Item(index, raw)
                index += 1


def count_items(inputs: Iterable[str | Path]) -> int:
    """How many documents the inputs hold (JSON Lines files are counted without decoding them)."""
    return sum(1 for _ in iter_items(inputs, lazy=True))


def _error_outcome(item: Item, exc: MyelomaKGError, patient: str | None) -> Outcome:
    data = exc.to_dict() if isinstance(exc, DataError) else {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, PatientInvalidError):
        report = exc.report
        data["violations"] = [v.to_dict() for v in getattr(report, "violations", [])]
    raw = item.document()
    return Outcome(item.index, raw.source, raw.position, patient, error=data)


def process_chunk(items: list[Item], profile: str = "default", validate_input: bool = True) -> list[Outcome]:
    """Parse, validate and recommend a chunk of documents; one outcome per item, in order."""
    from .patient import PatientDocument
    from .recommend import default_engine
    from .validate import validate, validate_many

    outcomes: dict[int, Outcome] = {}
    ready: list[tuple[Item, Any, list[dict[str, Any]]]] = []
    raw_of = {item.index: item.document() for item in items}
    converted: list[tuple[Item, Any]] = []
    for item, doc in zip(items, PatientDocument.from_raws([raw_of[item.index] for item in items])):
        if isinstance(doc, MyelomaKGError):
            outcomes[item.index] = _error_outcome(item, doc, raw_of[item.index].patient_id)
        else:
            converted.append((item, doc))
    if validate_input:
        try:
            reports: list[Any] = validate_many([doc for _, doc in converted])  # one pass for the chunk
        except MyelomaKGError:
            reports = [None] * len(converted)  # validate one by one below, to isolate the failing one
        for (item, doc), report in zip(converted, reports):
            try:
                if report is None:
                    report = validate(doc)
                report.raise_for_violations()
            except MyelomaKGError as exc:
                outcomes[item.index] = _error_outcome(item, exc, raw_of[item.index].patient_id)
                continue
            ready.append((item, doc, [w.to_dict() for w in report.warnings]))
    else:
        ready = [(item, doc, []) for item, doc in converted]
    if ready:
        engine = default_engine()
        try:
            recs, _ = engine.run([doc for _, doc, _ in ready], profile)
            pairs = list(zip(ready, recs))
        except MyelomaKGError:
            pairs = []
            for entry in ready:  # isolate the failing patient; the others still get results
                try:
                    pairs.append((entry, engine.run([entry[1]], profile)[0][0]))
                except MyelomaKGError as exc:
                    outcomes[entry[0].index] = _error_outcome(entry[0], exc, entry[1].id)
        for (item, doc, warnings), rec in pairs:
            result = rec.to_dict()
            result["validationWarnings"] = warnings
            outcomes[item.index] = Outcome(item.index, raw_of[item.index].source, raw_of[item.index].position, doc.id,
                                           result=result)
    return [outcomes[item.index] for item in items]


def _chunks(items: Iterable[Item], size: int, skip: set[int]) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        if item.index in skip:
            continue
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


#: One finished document as the parent writes it: (index, is a result, JSON line as UTF-8 bytes with its
#: newline, error kind or None). Bytes, not text: the parent of a cohort run then neither decodes nor
#: re-encodes the ~80 KB lines (results hold non-ASCII text), which left more of the two cores to the workers.
Line = tuple[int, bool, bytes, str | None]


def _lines(outcomes: list[Outcome]) -> list[Line]:
    return [(o.index, o.result is not None, o.line_bytes(),
             None if o.result is not None else (o.error or {}).get("kind", "error"))
            for o in outcomes]


def _write_lines(stream: TextIO, lines: list[bytes]) -> None:
    """Write complete JSON lines (each ending in its newline) to a text stream: through its byte buffer when
    it has one (flushing the text layer first keeps the order of anything written as text), else as text."""
    if not lines:
        return
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(b"".join(lines).decode("utf-8"))
        stream.flush()
        return
    stream.flush()
    buffer.write(b"".join(lines))
    buffer.flush()


def _worker(args: tuple[list[Item], str, bool]) -> list[Line]:
    """A worker's job: one chunk in, its JSON lines out (serialised here, not in the parent).

    The garbage collector is paused while the chunk runs and called once at its end. A chunk allocates
    hundreds of thousands of objects, almost none in reference cycles (about five per patient): the
    automatic collections scanned the chunk's live objects again and again (measured: 0.3 ms per patient at
    chunks of 50, 0.6 ms at 200). What survives the end-of-chunk collection (the knowledge base, shapes and
    catalogues after the first chunk, then cache entries) lives as long as the process, so it is frozen:
    later collections skip it. (The chunk's own lines are frozen with it; nothing cyclic, they are freed as
    usual once sent.)
    """
    items, profile, validate_input = args
    enabled = gc.isenabled()
    gc.disable()
    try:
        lines = _lines(process_chunk(items, profile, validate_input))
    finally:
        if enabled:
            gc.enable()
    gc.collect()
    gc.freeze()
    return lines


def _init_worker(native_threads: int) -> None:
    """A worker process's set-up: its share of the cores for the validator's native thread pool.

    pyrudof validates on a rayon pool with one thread per core. With one worker per core, each worker's
    extra threads only compete with the other workers and spin while they wait for work: one thread per
    worker used 4 % less CPU and ran 5 % faster (cohorts of 5,000 with ``--jobs 2`` on 2 cores, four runs
    each, session 15). Read once, when pyrudof first validates; a ``RAYON_NUM_THREADS`` set by the user wins.
    """
    os.environ.setdefault("RAYON_NUM_THREADS", str(native_threads))


def done_indexes(*paths: Path | None) -> set[int]:
    """Indexes already written to earlier results/errors files (complete lines only), for ``--resume``."""
    done: set[int] = set()
    for path in paths:
        if path is None or not path.exists():
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # a line cut by an interrupt: redo that patient
                try:
                    done.add(int(json.loads(line)["index"]))
                except (ValueError, KeyError, TypeError):
                    continue
    return done


def _truncate_partial_line(path: Path | None) -> None:
    """Drop a trailing incomplete line (from an interrupted run) so that appends stay valid JSON Lines."""
    if path is None or not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


class Progress:
    """A one-line progress display on a terminal: patients done, rate, time left."""

    def __init__(self, total: int | None, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.start = time.monotonic()
        self.done = 0

    def advance(self, n: int) -> None:
        """Count ``n`` more patients and redraw."""
        self.done += n
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        left = ""
        if self.total:
            remaining = max(self.total - self.done, 0) / rate if rate else 0
            left = f", {remaining:.0f} s left"
            line = f"\r{self.done}/{self.total} patients, {rate:.0f}/s{left}"
        else:
            line = f"\r{self.done} patients, {rate:.0f}/s"
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def run_cohort(
    inputs: list[str | Path],
    *,
    out: TextIO,
    errors: TextIO,
    profile: str = "default",
    jobs: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    skip: set[int] | None = None,
    validate_input: bool = True,
    progress: Callable[[int], None] | None = None,
) -> RunSummary:
    """Run every document of ``inputs``; write result lines to ``out`` and error lines to ``errors``.

    Lines are written in input order and flushed as each chunk completes, so an interrupted run
    leaves only complete lines. ``skip`` holds indexes already done (``--resume``). Inputs are read
    as the run goes (JSON Lines decoded by the workers) and at most a few chunks per worker are in
    flight, so memory does not grow with the size of the cohort.
    """
    summary = RunSummary()
    skip = skip or set()
    started = time.monotonic()

    def counted() -> Iterator[Item]:
        for item in iter_items(inputs, lazy=True):
            summary.total += 1
            if item.index in skip:
                summary.skipped += 1
            yield item

    def emit(lines: list[Line]) -> None:
        results: list[bytes] = []
        failures: list[bytes] = []
        for _, is_result, data, kind in lines:
            if is_result:
                results.append(data)
            else:
                failures.append(data)
                summary.error_kinds[kind or "error"] = summary.error_kinds.get(kind or "error", 0) + 1
        # Results first, then errors, each flushed: an interrupt leaves complete lines only.
        _write_lines(out, results)
        summary.results += len(results)
        _write_lines(errors, failures)
        summary.errors += len(failures)
        if progress:
            progress(len(lines))

    chunks = _chunks(counted(), chunk_size, skip)
    if jobs <= 1:
        for chunk in chunks:
            emit(_worker((chunk, profile, validate_input)))
    else:
        import multiprocessing as mp
        from collections import deque

        # Not "fork": a parent that already reasoned holds native thread pools (Oxigraph, rudof,
        # reasonable) that a forked child inherits locked. Workers start clean and load the knowledge
        # base from the on-disk cache.
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        native_threads = max(1, (os.cpu_count() or 1) // jobs)
        with ctx.Pool(jobs, initializer=_init_worker, initargs=(native_threads,)) as pool:
            in_flight: deque[Any] = deque()
            for chunk in chunks:
                in_flight.append(pool.apply_async(_worker, ((chunk, profile, validate_input),)))
                while len(in_flight) >= 3 * jobs:
                    emit(in_flight.popleft().get())
            while in_flight:
                emit(in_flight.popleft().get())
    summary.seconds = time.monotonic() - started
    return summary


def summarize(path: str | Path) -> dict[str, Any]:
    """Cohort table from a results file: per regimen, how many patients got each strength, by situation,
    and the rules that drove exclusions."""
    per_regimen: dict[str, dict[str, int]] = {}
    by_situation: dict[str, dict[str, dict[str, int]]] = {}
    exclusion_rules: dict[str, dict[str, int]] = {}
    patients = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            patients += 1
            situations = [s for s in rec.get("situation", []) if s in ("first-relapse", "second-or-later-relapse")] or ["other"]
            entries = [(o["regimen"], o["strength"]) for o in rec.get("options", [])]
            entries += [(e["regimen"], "excluded") for e in rec.get("excluded", [])]
            for regimen, strength in entries:
                per_regimen.setdefault(regimen, {}).setdefault(strength, 0)
                per_regimen[regimen][strength] += 1
                for sit in situations:
                    cell = by_situation.setdefault(sit, {}).setdefault(regimen, {})
                    cell[strength] = cell.get(strength, 0) + 1
            for e in rec.get("excluded", []):
                for rule in e.get("rules", []):
                    exclusion_rules.setdefault(e["regimen"], {}).setdefault(rule, 0)
                    exclusion_rules[e["regimen"]][rule] += 1
    return {"patients": patients, "regimens": per_regimen, "bySituation": by_situation,
            "exclusionRules": exclusion_rules}


def render_summary(summary: dict[str, Any]) -> str:
    """The cohort table as text."""
    cols = ["preferred", "alternative", "consider", "not-preferred", "excluded"]
    lines = [f"{summary['patients']} patients", "",
             f"{'regimen':<20}" + "".join(f"{c:>14}" for c in cols) + "  exclusion rules"]
    for regimen in sorted(summary["regimens"]):
        counts = summary["regimens"][regimen]
        rules = summary["exclusionRules"].get(regimen, {})
        rule_text = ", ".join(f"{r}×{n}" for r, n in sorted(rules.items(), key=lambda kv: -kv[1]))
        lines.append(f"{regimen:<20}" + "".join(f"{counts.get(c, 0):>14}" for c in cols) + f"  {rule_text}")
    for situation, table in sorted(summary["bySituation"].items()):
        lines += ["", f"[{situation}]"]
        for regimen in sorted(table):
            counts = table[regimen]
            lines.append(f"  {regimen:<18}" + "".join(f"{counts.get(c, 0):>14}" for c in cols))
    return "\n".join(lines) + "\n"


def prepare_resume(out_path: Path | None, errors_path: Path | None) -> set[int]:
    """Clean partial lines and return the indexes already done."""
    _truncate_partial_line(out_path)
    _truncate_partial_line(errors_path)
    return done_indexes(out_path, errors_path)
