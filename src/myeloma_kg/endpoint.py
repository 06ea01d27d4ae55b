"""``myeloma-kg serve``: a SPARQL 1.1 Protocol endpoint over the knowledge graph, safe by default.

The dataset, held in pyoxigraph stores:

* the **default graph** holds the ontology with its OWL 2 RL inferred triples (the knowledge base the
  rules run on). In ``default-graph-uri`` it can be named :data:`KB_GRAPH`, so that a query can run over
  the knowledge base *plus* a patient graph (``default-graph-uri=KB_GRAPH&default-graph-uri=<patient>``);
* one **named graph per loaded patient** (``--patients DIR``), named by the patient's IRI
  (``https://w3id.org/myeloma-kg/patient/<id>``): the validated patient document with everything derived
  for it (facts, situations, administrations, option assessments) and its recommendation, both as
  triples (vocabulary :data:`RESULT`) and as the engine's JSON (``res:json``, an ``rdf:JSON`` literal).

HTTP interface (standard library ``ThreadingHTTPServer``):

* ``/sparql`` — SPARQL 1.1 Protocol. Queries by GET (``?query=``), by POST form-encoded (``query=``) and
  by POST ``application/sparql-query``; ``default-graph-uri`` / ``named-graph-uri`` honoured. Results
  as SPARQL JSON, XML, CSV or TSV (SELECT/ASK) and Turtle, N-Triples, JSON-LD or RDF/XML
  (CONSTRUCT/DESCRIBE), chosen by the Accept header. ``GET /sparql`` without a query returns the
  service description. Updates (POST form ``update=`` or ``application/sparql-update``) are refused
  with 403 unless the server was started with an update token, which must then be sent as
  ``Authorization: Bearer <token>``.
* ``POST /recommend`` — a patient document (JSON) in, the engine's recommendation JSON out
  (``?profile=`` chooses the profile); 400 with the validation report when the document is invalid.
* ``GET /health`` — liveness, dataset size and limits, as JSON. ``GET /`` — a query page (plain HTML
  and JavaScript served from the package; nothing is fetched from elsewhere).

Safety: binds 127.0.0.1 unless told otherwise; ``SERVICE`` and ``LOAD`` are refused (403) before
anything is parsed or run, so the server never fetches from other hosts or reads local files; every
query runs in a worker process with a time limit (503 when exceeded; the worker is killed and
replaced) and a result-size limit (422); request bodies are limited (413). Malformed queries get 400
with the parser's message, unsupported media types 415, methods the protocol does not allow 405 and
unacceptable Accept headers 406.
"""

from __future__ import annotations

import hmac
import json
import multiprocessing
import os
import queue
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from .namespaces import BASE, MKG, PREFIXES, REGIMEN
from .remote import mask_sparql

#: Name of the default graph (the knowledge base) in ``default-graph-uri``.
KB_GRAPH = BASE + "graph/kb"
#: Vocabulary of the recommendation triples in patient graphs.
RESULT = BASE + "result/"
RDF_JSON = "http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS_NS = "http://www.w3.org/ns/formats/"
VOID = "http://rdfs.org/ns/void#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "style.css": "text/css; charset=utf-8"}

_STRENGTH_INDIVIDUALS = {"preferred": "Preferred", "alternative": "Alternative", "consider": "Consider",
                         "not-preferred": "NotPreferred", "excluded": "Excluded"}

# ---------------------------------------------------------------- content negotiation

RESULT_FORMATS: list[tuple[str, ox.QueryResultsFormat]] = [
    ("application/sparql-results+json", ox.QueryResultsFormat.JSON),
    ("application/json", ox.QueryResultsFormat.JSON),
    ("application/sparql-results+xml", ox.QueryResultsFormat.XML),
    ("application/xml", ox.QueryResultsFormat.XML),
    ("text/xml", ox.QueryResultsFormat.XML),
    ("text/csv", ox.QueryResultsFormat.CSV),
    ("text/tab-separated-values", ox.QueryResultsFormat.TSV),
]
GRAPH_FORMATS: list[tuple[str, ox.RdfFormat]] = [
    ("text/turtle", ox.RdfFormat.TURTLE),
    ("application/x-turtle", ox.RdfFormat.TURTLE),
    ("application/turtle", ox.RdfFormat.TURTLE),
    ("application/n-triples", ox.RdfFormat.N_TRIPLES),
    ("text/plain", ox.RdfFormat.N_TRIPLES),
    ("application/ld+json", ox.RdfFormat.JSON_LD),
    ("application/json", ox.RdfFormat.JSON_LD),
    ("application/rdf+xml", ox.RdfFormat.RDF_XML),
]


def _parse_accept(header: str) -> list[tuple[str, str, float]]:
    ranges = []
    for part in header.split(","):
        items = [p.strip() for p in part.split(";")]
        if not items[0]:
            continue
        media = items[0].lower()
        kind, _, sub = media.partition("/")
        q = 1.0
        for param in items[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((kind, sub or "*", q))
    return ranges


def negotiate(accept: str | None, offers: Sequence[tuple[str, Any]]) -> tuple[str, Any] | None:
    """Pick the offer the Accept header prefers (ties: the server's order); None when none is acceptable.

    >>> negotiate("text/csv;q=0.5, application/sparql-results+xml", RESULT_FORMATS)[0]
    'application/sparql-results+xml'
    >>> negotiate("*/*", GRAPH_FORMATS)[0]
    'text/turtle'
    >>> negotiate("image/png", RESULT_FORMATS) is None
    True
    """
    if not accept or not accept.strip():
        return offers[0]
    ranges = _parse_accept(accept)
    best: tuple[float, int] | None = None
    chosen = None
    for index, offer in enumerate(offers):
        kind, _, sub = offer[0].partition("/")
        quality, specificity = -1.0, -1
        for r_kind, r_sub, q in ranges:
            if r_kind == kind and r_sub == sub:
                spec = 2
            elif r_kind == kind and r_sub == "*":
                spec = 1
            elif r_kind == "*":
                spec = 0
            else:
                continue
            if spec > specificity:
                quality, specificity = q, spec
        if quality > 0 and (best is None or quality > best[0]):
            best, chosen = (quality, index), offer
    return chosen


# ---------------------------------------------------------------- query inspection

_KEYWORD = re.compile(r"service|load", re.IGNORECASE)
_NAME_CHARS = re.compile(r"[\w\-.:%\\\u00B7\u00C0-\U000EFFFF]")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def _unescape_codepoints(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        try:
            return chr(int(match.group(1) or match.group(2), 16))
        except (ValueError, OverflowError):
            return match.group(0)

    return _UNICODE_ESCAPE.sub(repl, text)


def forbidden_operation(text: str) -> str | None:
    """``SERVICE`` or ``LOAD`` when the query or update uses one (outside strings, IRIs and comments).

    A keyword inside a prefixed name after its colon (``ex:download``) is a name and allowed; anywhere
    else the word is taken as the keyword (``service:x { }`` would be a SERVICE call), so the check
    errs on the side of refusing.

    >>> forbidden_operation('SELECT * { SERVICE <http://example.org/sparql> { ?s ?p ?o } }')
    'SERVICE'
    >>> forbidden_operation('select * { ?s ?p 1sErViCe:x { } }')
    'SERVICE'
    >>> forbidden_operation('SELECT * { ?s <urn:load> "SERVICE" ; ex:download ?o } # LOAD')
    >>> forbidden_operation('LOAD <file:///etc/passwd>')
    'LOAD'
    """
    variants = (text, _unescape_codepoints(text)) if "\\u" in text or "\\U" in text else (text,)
    for variant in variants:
        masked = mask_sparql(variant)
        for match in _KEYWORD.finditer(masked):
            start = match.start()
            i = start - 1
            in_name = False
            while i >= 0 and _NAME_CHARS.match(masked[i]):
                if masked[i] == ":":
                    in_name = True
                    break
                i -= 1
            if not in_name:
                return match.group(0).upper()
    return None


_DATA_UPDATE = re.compile(
    r"\s*(?:(?:PREFIX\s+[^\s:]*:\s*_+|BASE\s*_+)\s*)*"
    r"(?:(?:INSERT|DELETE)\s+DATA\s*\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}\s*(?:;\s*(?:(?:PREFIX\s+[^\s:]*:\s*_+|BASE\s*_+)\s*)*)?)+",
    re.IGNORECASE,
)


def is_data_update(text: str) -> bool:
    """True when an update is only ``INSERT DATA`` / ``DELETE DATA`` operations (deterministic).

    >>> is_data_update('PREFIX ex: <http://e/> INSERT DATA { ex:a ex:b "}" } ; DELETE DATA { GRAPH ex:g { ex:a ex:b 1 } }')
    True
    >>> is_data_update('DELETE WHERE { ?s ?p ?o }')
    False
    """
    return _DATA_UPDATE.fullmatch(mask_sparql(text)) is not None


# ---------------------------------------------------------------- the dataset

@dataclass
class SkippedPatient:
    """A document of ``--patients`` that was not loaded, and why."""

    source: str
    patient: str | None
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "patient": self.patient, "reasons": self.reasons}


def option_iri(option_id: str) -> str:
    """IRI of a regimen or procedure from its id in the recommendation JSON."""
    return option_id if "://" in option_id else str(REGIMEN) + option_id


def recommendation_triples(rec: Any, patient_iri: str) -> list[ox.Triple]:
    """The recommendation of one patient as triples (vocabulary :data:`RESULT`, prefix ``res:``).

    ``<patient> res:recommendation <patient#recommendation-PROFILE>``, which has ``res:profile``,
    ``res:situation`` codes, ``res:option`` nodes (``res:regimen``, ``res:strength`` as the ontology's
    strength individuals, ``res:position`` in the ranking, ``res:rule``), ``res:excluded`` nodes and
    ``res:json`` — the whole JSON contract as an ``rdf:JSON`` literal.
    """
    res = RESULT
    node = ox.NamedNode(f"{patient_iri}#recommendation-{rec.profile}")
    patient = ox.NamedNode(patient_iri)
    out = [
        ox.Triple(patient, ox.NamedNode(res + "recommendation"), node),
        ox.Triple(node, ox.NamedNode(RDF_TYPE), ox.NamedNode(res + "Recommendation")),
        ox.Triple(node, ox.NamedNode(res + "profile"), ox.NamedNode(BASE + "profile/" + rec.profile)),
        ox.Triple(node, ox.NamedNode(res + "json"),
                  ox.Literal(json.dumps(rec.to_dict(), ensure_ascii=False, sort_keys=True),
                             datatype=ox.NamedNode(RDF_JSON))),
    ]
    for code in rec.situation:
        out.append(ox.Triple(node, ox.NamedNode(res + "situation"), ox.Literal(code)))
    for position, option in enumerate(rec.options, start=1):
        item = ox.BlankNode()
        out += [
            ox.Triple(node, ox.NamedNode(res + "option"), item),
            ox.Triple(item, ox.NamedNode(res + "regimen"), ox.NamedNode(option_iri(option.regimen))),
            ox.Triple(item, ox.NamedNode(res + "strength"),
                      ox.NamedNode(str(MKG) + _STRENGTH_INDIVIDUALS[option.strength])),
            ox.Triple(item, ox.NamedNode(res + "position"),
                      ox.Literal(str(position), datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer"))),
        ]
        out += [ox.Triple(item, ox.NamedNode(res + "rule"), ox.Literal(r)) for r in option.rules]
    for excluded in rec.excluded:
        item = ox.BlankNode()
        out += [
            ox.Triple(node, ox.NamedNode(res + "excluded"), item),
            ox.Triple(item, ox.NamedNode(res + "regimen"), ox.NamedNode(option_iri(excluded.regimen))),
            ox.Triple(item, ox.NamedNode(res + "strength"), ox.NamedNode(str(MKG) + "Excluded")),
        ]
        out += [ox.Triple(item, ox.NamedNode(res + "rule"), ox.Literal(r)) for r in excluded.rules]
    return out


def patient_graph_triples(doc: Any, engine: Any | None = None, profile: str = "default") -> list[ox.Triple]:
    """A patient's named-graph content: its graph with everything derived, and its recommendation."""
    from .queries import api_query
    from .recommend import default_engine

    engine = engine or default_engine()
    results, store = engine.run([doc], profile, keep_store=True)
    triples = list(store.query(api_query("patient-graph").executable))
    return triples + recommendation_triples(results[0], doc.iri)


def load_patient_graphs(path: str | Path, engine: Any | None = None, profile: str = "default",
                        ) -> tuple[list[tuple[Any, list[ox.Triple]]], list[SkippedPatient]]:
    """Read, validate and reason every patient document of a file or directory.

    :returns: ``[(document, named-graph triples)]`` for the valid patients and the skipped documents
        (unreadable, invalid, or a duplicate id) with the reasons.
    """
    from .errors import DataError
    from .io import read_documents
    from .patient import PatientDocument
    from .validate import validate_raw

    loaded: list[tuple[Any, list[ox.Triple]]] = []
    skipped: list[SkippedPatient] = []
    seen: set[str] = set()
    for raw in read_documents(path):
        report = validate_raw(raw)
        where = f"{raw.source}#{raw.position}"
        if not report.conforms:
            reasons = [str(v) for v in report.violations]
            if report.error is not None:
                reasons.insert(0, str(report.error))
            skipped.append(SkippedPatient(where, report.patient, reasons))
            continue
        try:
            doc = PatientDocument.from_raw(raw)
        except DataError as exc:
            skipped.append(SkippedPatient(where, None, [str(exc)]))
            continue
        if doc.id in seen:
            skipped.append(SkippedPatient(where, doc.id, [f"duplicate patient id {doc.id!r}"]))
            continue
        seen.add(doc.id)
        loaded.append((doc, patient_graph_triples(doc, engine, profile)))
    return loaded, skipped


class Dataset:
    """The authoritative copy of the served data (workers hold copies; updates go through here)."""

    def __init__(self, patients: str | Path | None = None, *, template: Any | None = None) -> None:
        from .reason import knowledge_template

        self.template = template or knowledge_template()
        self.store = ox.Store()
        self.store.bulk_load(self.template.ntriples, format=ox.RdfFormat.N_TRIPLES)
        self.patients: list[str] = []
        self.skipped: list[SkippedPatient] = []
        self.lock = threading.Lock()
        if patients is not None:
            loaded, self.skipped = load_patient_graphs(patients)
            for doc, triples in loaded:
                graph = ox.NamedNode(doc.iri)
                self.store.extend(ox.Quad(t.subject, t.predicate, t.object, graph) for t in triples)
                self.patients.append(doc.id)
        self.counts = self._count()

    def _count(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.store.query("SELECT ?g (COUNT(*) AS ?n) WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } } GROUP BY ?g"):
            name = row["g"].value if row["g"] is not None else ""
            counts[name] = int(row["n"].value)
        return counts

    def snapshot(self) -> bytes:
        """The whole dataset as N-Quads (what a new worker loads)."""
        with self.lock:
            return self.store.dump(format=ox.RdfFormat.N_QUADS)

    def update(self, text: str) -> None:
        """Apply an update (raises SyntaxError for a malformed one)."""
        with self.lock:
            self.store.update(text)
            self.counts = self._count()


# ---------------------------------------------------------------- worker processes

Reply = tuple[int, str, bytes, dict[str, str]]


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return status, "text/plain; charset=utf-8", (message.rstrip("\n") + "\n").encode("utf-8"), headers or {}


def _json(status: int, value: Any) -> Reply:
    return status, "application/json", json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8"), {}


def _graph_term(iri: str) -> Any:
    return ox.DefaultGraph() if iri == KB_GRAPH else ox.NamedNode(iri)


def run_query(store: ox.Store, text: str, default_graphs: list[str] | None, named_graphs: list[str] | None,
              accept: str | None, max_results: int) -> Reply:
    """Evaluate one query and serialise its result as the Accept header asks."""
    kwargs: dict[str, Any] = {}
    if default_graphs:
        kwargs["default_graph"] = [_graph_term(g) for g in default_graphs]
    if named_graphs:
        kwargs["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
    try:
        result = store.query(text, **kwargs)
    except SyntaxError as exc:
        return _text(400, f"malformed query: {exc}")
    if isinstance(result, (ox.QueryBoolean, ox.QuerySolutions)):
        chosen = negotiate(accept, RESULT_FORMATS)
        if chosen is None:
            return _not_acceptable(RESULT_FORMATS)
        fmt = chosen[1]
        if isinstance(result, ox.QueryBoolean):
            return 200, fmt.media_type, result.serialize(format=fmt), {}
        variables = [v.value for v in result.variables]
        lines = ["\t".join("?" + v for v in variables)]
        for count, solution in enumerate(result, start=1):
            if count > max_results:
                return _too_many(max_results)
            lines.append("\t".join("" if t is None else str(t) for t in solution))
        tsv = ("\n".join(lines) + "\n").encode("utf-8")
        if fmt == ox.QueryResultsFormat.TSV:
            return 200, fmt.media_type, tsv, {}
        body = ox.parse_query_results(tsv, format=ox.QueryResultsFormat.TSV).serialize(format=fmt)
        return 200, fmt.media_type, body, {}
    chosen = negotiate(accept, GRAPH_FORMATS)
    if chosen is None:
        return _not_acceptable(GRAPH_FORMATS)
    triples = []
    for count, triple in enumerate(result, start=1):
        if count > max_results:
            return _too_many(max_results)
        triples.append(triple)
    fmt = chosen[1]
    prefixes = PREFIXES if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML) else None
    body = ox.serialize(triples, format=fmt, prefixes=prefixes) if prefixes else ox.serialize(triples, format=fmt)
    media = fmt.media_type + ("; charset=utf-8" if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.N_TRIPLES) else "")
    return 200, media, body, {}


def _not_acceptable(offers: Sequence[tuple[str, Any]]) -> Reply:
    types = ", ".join(dict.fromkeys(m for m, _ in offers))
    return _text(406, f"none of the requested media types can be produced for this query; available: {types}")


def _too_many(limit: int) -> Reply:
    return _text(422, f"result too large: more than {limit} results (the server's --max-results); "
                      "add a LIMIT or narrow the query")


def run_recommend(engine: Any, body: bytes, profile: str) -> Reply:
    """Validate a patient document (JSON) and recommend for it."""
    from .errors import DataError
    from .patient import PatientDocument
    from .validate import validate

    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _json(400, {"error": f"malformed JSON: {exc}"})
    if not isinstance(data, dict):
        return _json(400, {"error": "the patient document must be a JSON object"})
    try:
        try:
            doc: PatientDocument | None = PatientDocument.from_dict(data)
        except DataError:
            doc = None  # validate() reports why the document cannot be converted
        report = validate(doc if doc is not None else data)  # converted once: validation reuses the graph
        if not report.conforms or doc is None:
            return _json(400, {"error": "invalid patient document", "report": report.to_dict()})
        results, _ = engine.run([doc], profile)
    except DataError as exc:
        return _json(400, {"error": str(exc), "details": exc.to_dict()})
    # orjson writes the text json.dumps(indent=2, ensure_ascii=False) writes, ~15x faster (Recommendation.to_json)
    return 200, "application/json", results[0].to_json().encode("utf-8"), {}


_WARM_UP = {"id": "warm-up", "assessmentDate": "2026-01-01", "lines": [
    {"number": 1, "drugs": ["lenalidomide", "dexamethasone"], "start": "2024-01-01", "bestResponse": "PR",
     "progression": "2025-12-01", "progressionOnTherapy": True}]}


def _worker_main(conn: Any, dataset: bytes, template: Any, settings: dict[str, Any]) -> None:
    """A query worker: holds a copy of the dataset and answers jobs from the server, one at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory(settings.get("max_memory_mb"))
    store = ox.Store()
    store.bulk_load(dataset, format=ox.RdfFormat.N_QUADS)
    del dataset
    from .reason import Reasoner
    from .recommend import Engine

    engine = Engine(reasoner=Reasoner(template=template))
    run_recommend(engine, json.dumps(_WARM_UP).encode(), "default")  # load shapes and catalogue now
    max_results = int(settings["max_results"])
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        kind = job[0]
        try:
            if kind == "query":
                reply = run_query(store, job[1], job[2], job[3], job[4], max_results)
            elif kind == "update":
                store.update(job[1])
                reply = _text(204, "")
            elif kind == "reload":
                store = ox.Store()
                store.bulk_load(job[1], format=ox.RdfFormat.N_QUADS)
                reply = _text(204, "")
            elif kind == "recommend":
                reply = run_recommend(engine, job[1], job[2])
            else:
                reply = _text(500, f"unknown job {kind!r}")
        except SyntaxError as exc:
            reply = _text(400, f"malformed request: {exc}")
        except MemoryError:
            reply = _text(503, "the query needs more memory than a worker may use")
        except Exception as exc:  # report, keep serving
            reply = _text(500, f"internal error: {type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


def _limit_memory(megabytes: int | None) -> None:
    if not megabytes:
        return
    try:
        import resource

        limit = int(megabytes) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


class QueryTimeout(Exception):
    """A job did not finish within its time limit (its worker was killed)."""


class ServerBusy(Exception):
    """No worker became free in time."""


class WorkerCrashed(Exception):
    """A worker died while running a job."""


@dataclass
class _Worker:
    process: Any
    conn: Any

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerPool:
    """Worker processes, each with a copy of the dataset; a job that overruns its time is killed."""

    def __init__(self, dataset: Dataset, size: int, settings: dict[str, Any], *, startup_timeout: float = 180.0) -> None:
        self.dataset = dataset
        self.size = size
        self.settings = settings
        self.startup_timeout = startup_timeout
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: dict[int, _Worker] = {}
        self._all_lock = threading.Lock()
        self._update_mutex = threading.Lock()
        self._closed = False
        self._ctx = multiprocessing.get_context("spawn")
        self.replaced = 0

    def start(self) -> None:
        """Start every worker and wait until each is ready."""
        data = self.dataset.snapshot()
        starting = [self._launch(data) for _ in range(self.size)]
        for worker in starting:
            self._await_ready(worker)

    def _launch(self, data: bytes) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main, args=(child, data, self.dataset.template, self.settings),
                                    daemon=True, name="myeloma-kg-sparql-worker")
        process.start()
        child.close()
        worker = _Worker(process, parent)
        with self._all_lock:
            self._all[worker.pid] = worker
        return worker

    def _await_ready(self, worker: _Worker) -> None:
        try:
            if not worker.conn.poll(self.startup_timeout):
                raise TimeoutError
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._kill(worker)
            raise RuntimeError("a SPARQL worker did not start (it stopped or took too long; see its error above)") from None
        if not (isinstance(message, tuple) and message[0] == "ready"):
            self._kill(worker)
            raise RuntimeError(f"a SPARQL worker failed to start: {message!r}")
        self._idle.put(worker)

    def _kill(self, worker: _Worker) -> None:
        with self._all_lock:
            self._all.pop(worker.pid, None)
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, TypeError):
            pass
        worker.process.join(timeout=5)
        worker.conn.close()

    def _replace(self, worker: _Worker) -> None:
        """Kill a worker and start another in the background (with the current data)."""
        self._kill(worker)
        self.replaced += 1
        if self._closed:
            return

        def start() -> None:
            try:
                new = self._launch(self.dataset.snapshot())
                self._await_ready(new)
            except Exception as exc:  # keep serving with fewer workers; say so
                print(f"myeloma-kg serve: could not replace a worker: {exc}", file=sys.stderr)

        threading.Thread(target=start, daemon=True, name="myeloma-kg-respawn").start()

    def alive(self) -> int:
        with self._all_lock:
            return len(self._all)

    def pids(self) -> list[int]:
        with self._all_lock:
            return list(self._all)

    def run(self, job: tuple[Any, ...], timeout: float, wait: float) -> Reply:
        """Run a job on a free worker.

        :raises ServerBusy: no worker free within ``wait`` seconds.
        :raises QueryTimeout: the job ran longer than ``timeout`` seconds (its worker is replaced).
        :raises WorkerCrashed: the worker died.
        """
        try:
            worker = self._idle.get(timeout=wait)
        except queue.Empty:
            raise ServerBusy from None
        try:
            worker.conn.send(job)
            if not worker.conn.poll(timeout):
                self._replace(worker)
                raise QueryTimeout
            reply = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._replace(worker)
            raise WorkerCrashed from None
        self._idle.put(worker)
        return reply

    def update(self, text: str, wait: float) -> Reply:
        """Apply an update to the dataset and to every worker, with no query running meanwhile."""
        with self._update_mutex:
            taken: list[_Worker] = []
            try:
                deadline = time.monotonic() + wait
                while len(taken) < self.size:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ServerBusy
                    try:
                        taken.append(self._idle.get(timeout=remaining))
                    except queue.Empty:
                        raise ServerBusy from None
                try:
                    self.dataset.update(text)
                except SyntaxError as exc:
                    return _text(400, f"malformed update: {exc}")
                except Exception as exc:  # the store refused it: nothing was applied
                    return _text(500, f"the update failed: {type(exc).__name__}: {exc}")
                job: tuple[Any, ...] = ("update", text) if is_data_update(text) else ("reload", self.dataset.snapshot())
                for worker in list(taken):
                    try:
                        worker.conn.send(job)
                        if not worker.conn.poll(max(120.0, wait)):
                            raise TimeoutError
                        reply = worker.conn.recv()
                        if reply[0] >= 300:
                            raise RuntimeError(reply[2].decode("utf-8", "replace"))
                    except Exception:
                        taken.remove(worker)
                        self._replace(worker)  # the replacement loads the updated data
                return _text(204, "")
            finally:
                for worker in taken:
                    self._idle.put(worker)

    def close(self) -> None:
        """Stop every worker (by pid)."""
        self._closed = True
        with self._all_lock:
            workers = list(self._all.values())
        for worker in workers:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        for worker in workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                self._kill(worker)
            else:
                with self._all_lock:
                    self._all.pop(worker.pid, None)
                worker.conn.close()


# ---------------------------------------------------------------- HTTP

@dataclass
class EndpointConfig:
    """Settings of ``myeloma-kg serve`` (see the command's help)."""

    host: str = "127.0.0.1"
    port: int = 7878
    patients: str | Path | None = None
    update_token: str | None = None
    timeout: float = 10.0
    max_results: int = 10000
    max_body: int = 1_000_000
    workers: int = 2
    max_memory_mb: int | None = 4096
    quiet: bool = False
    log: Callable[[str], None] | None = field(default=None, repr=False)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    app: EndpointServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is not worth a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "myeloma-kg"
    timeout = 60  # seconds a client may take to send a request
    disable_nagle_algorithm = True  # small answers must not wait for the client's delayed ACK

    # --------------------------------------------------------- plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        app = self.server.app
        if not app.config.quiet:
            (app.config.log or (lambda line: print(line, file=sys.stderr)))(
                f"{self.address_string()} {format % args}")

    def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        # headers and body in one write (as end_headers would, plus the body)
        self._headers_buffer.append(b"\r\n")
        if status != 204 and self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def _reply(self, reply: Reply) -> None:
        status, content_type, body, headers = reply
        self._send(status, content_type, body, headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._reply(_text(status, message, headers))

    def _method_not_allowed(self, allow: str) -> None:
        self._error(405, f"{self.command} is not allowed on {self._path()}; use {allow}", {"Allow": allow})

    def _path(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    def _params(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 411/413 (the body is drained when reasonable)."""
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            self._error(411, "send the request body with a Content-Length (chunked bodies are not accepted)")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0") or "0")
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._error(400, "bad Content-Length")
            return None
        limit = self.server.app.config.max_body
        if length > limit:
            self.close_connection = True
            if length <= 64 * limit:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 65536))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            self._error(413, f"request body of {length} bytes is larger than the limit of {limit} bytes "
                             "(the server's --max-body)")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _content_type(self) -> tuple[str, str | None]:
        raw = self.headers.get("Content-Type", "")
        parts = [p.strip() for p in raw.split(";")]
        charset = None
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip('"').lower()
        return parts[0].lower(), charset

    # --------------------------------------------------------- methods
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self._path()
        if path == "/sparql":
            self._sparql_get()
        elif path in ("/", "/index.html"):
            self._static("index.html")
        elif path.startswith("/static/"):
            self._static(path[len("/static/"):])
        elif path == "/health":
            self._health()
        elif path == "/recommend":
            self._method_not_allowed("POST")
        else:
            self._error(404, f"no such resource: {path}; see / for the query page and /sparql for the endpoint")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_POST(self) -> None:  # noqa: N802
        path = self._path()
        if path == "/sparql":
            self._sparql_post()
        elif path == "/recommend":
            self._recommend()
        elif path in ("/", "/index.html", "/health") or path.startswith("/static/"):
            self._drain()
            self._method_not_allowed("GET")
        else:
            self._drain()
            self._error(404, f"no such resource: {path}")

    def _other(self) -> None:
        path = self._path()
        self._drain()
        allow = {"/sparql": "GET, POST", "/recommend": "POST"}.get(path, "GET")
        if self.command == "OPTIONS":
            self._send(204, "", b"", {"Allow": allow + ", OPTIONS"})
        else:
            self._method_not_allowed(allow)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other  # noqa: N815

    def _drain(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0") or "0")
        except ValueError:
            length = 0
        if 0 < length <= self.server.app.config.max_body:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    # --------------------------------------------------------- /sparql
    def _sparql_get(self) -> None:
        params = self._params()
        if "update" in params:
            self._method_not_allowed("POST")  # SPARQL Update is POST only
            return
        if "query" not in params:
            self._service_description()
            return
        self._query(params, params)

    def _sparql_post(self) -> None:
        body = self._read_body()
        if body is None:
            return
        media, charset = self._content_type()
        if charset not in (None, "utf-8", "utf8", "us-ascii"):
            self._error(415, f"unsupported charset {charset!r}; send UTF-8")
            return
        url_params = self._params()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            self._error(400, "the request body is not UTF-8")
            return
        if media == "application/x-www-form-urlencoded":
            form = urllib.parse.parse_qs(text, keep_blank_values=True)
            if ("query" in form) == ("update" in form):
                self._error(400, "send exactly one of the form fields `query` or `update`")
                return
            merged = {k: form.get(k, []) + url_params.get(k, []) for k in set(form) | set(url_params)}
            if "query" in form:
                self._query(merged, merged)
            else:
                self._update(form["update"], merged)
        elif media == "application/sparql-query":
            self._query({**url_params, "query": [text]}, url_params)
        elif media == "application/sparql-update":
            self._update([text], url_params)
        else:
            shown = media or "none"
            self._error(415, f"unsupported media type {shown}; send application/sparql-query, "
                             "application/sparql-update or application/x-www-form-urlencoded")

    def _query(self, params: dict[str, list[str]], graphs: dict[str, list[str]]) -> None:
        texts = params.get("query", [])
        if len(texts) != 1:
            self._error(400, "give exactly one query")
            return
        text = texts[0]
        if not text.strip():
            self._error(400, "the query is empty")
            return
        refused = forbidden_operation(text)
        if refused:
            self._error(403, _refusal(refused))
            return
        default_graphs = graphs.get("default-graph-uri") or None
        named_graphs = graphs.get("named-graph-uri") or None
        for iri in (default_graphs or []) + (named_graphs or []):
            try:
                ox.NamedNode(iri)
            except ValueError:
                self._error(400, f"not an absolute IRI: {iri!r} (default-graph-uri / named-graph-uri)")
                return
        job = ("query", text, default_graphs, named_graphs, self.headers.get("Accept"))
        self._run(job)

    def _run(self, job: tuple[Any, ...]) -> None:
        app = self.server.app
        timeout = app.config.timeout
        wait = max(3 * timeout, 30.0)
        # /recommend (tens to hundreds of ms each) may hold all workers but one, so that queries
        # never queue behind a burst of recommendations.
        slots = app.recommend_slots if job[0] == "recommend" else None
        if slots is not None and not slots.acquire(timeout=wait):
            self._error(503, "the server is busy; retry shortly", {"Retry-After": "1"})
            return
        try:
            reply = app.pool.run(job, timeout=timeout, wait=wait)
        except QueryTimeout:
            self._error(503, f"the request ran longer than the time limit of {timeout:g} s (the server's --timeout) "
                             "and was stopped; simplify the query or add a LIMIT")
            return
        except ServerBusy:
            self._error(503, "the server is busy; retry shortly", {"Retry-After": "1"})
            return
        except WorkerCrashed:
            self._error(500, "the worker running the request stopped (out of memory?); it has been replaced")
            return
        finally:
            if slots is not None:
                slots.release()
        headers = dict(reply[3])
        if job[0] == "query":
            headers.setdefault("Vary", "Accept")
        self._reply((reply[0], reply[1], reply[2], headers))

    def _update(self, texts: list[str], params: dict[str, list[str]]) -> None:
        app = self.server.app
        token = app.config.update_token
        if not token:
            self._error(403, "this endpoint is read-only: SPARQL Update is refused "
                             "(start the server with --update-token to allow it)")
            return
        given = self.headers.get("Authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), token.encode()):
            self._error(401, "SPARQL Update needs the server's update token as `Authorization: Bearer <token>`",
                        {"WWW-Authenticate": 'Bearer realm="myeloma-kg"'})
            return
        if len(texts) != 1 or not texts[0].strip():
            self._error(400, "give exactly one non-empty update")
            return
        if params.get("using-graph-uri") or params.get("using-named-graph-uri"):
            self._error(400, "using-graph-uri / using-named-graph-uri are not supported; write USING in the update")
            return
        refused = forbidden_operation(texts[0])
        if refused:
            self._error(403, _refusal(refused))
            return
        try:
            reply = app.pool.update(texts[0], wait=max(app.config.timeout, 5.0) * 3)
        except ServerBusy:
            self._error(503, "the server is busy; retry shortly", {"Retry-After": "1"})
            return
        self._reply(reply)

    def _service_description(self) -> None:
        app = self.server.app
        chosen = negotiate(self.headers.get("Accept"), GRAPH_FORMATS)
        if chosen is None:
            self._reply(_not_acceptable(GRAPH_FORMATS))
            return
        endpoint = f"http://{self.headers.get('Host') or ''}/sparql"
        try:
            ox.NamedNode(endpoint)
            if not self.headers.get("Host"):
                raise ValueError
        except ValueError:  # no or odd Host header: use the address the server listens on
            endpoint = app.url + "/sparql"
        triples = service_description(endpoint, app)
        fmt = chosen[1]
        if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML):
            prefixes = {"sd": SD, "void": VOID, "rdfs": RDFS, "formats": FORMATS_NS}
            body = ox.serialize(triples, format=fmt, prefixes=prefixes)
        else:
            body = ox.serialize(triples, format=fmt)
        self._send(200, fmt.media_type, body, {"Vary": "Accept"})

    # --------------------------------------------------------- other resources
    def _recommend(self) -> None:
        body = self._read_body()
        if body is None:
            return
        media, _ = self._content_type()
        if media not in ("application/json", "application/ld+json"):
            self._error(415, f"unsupported media type {media or 'none'}; send the patient document as application/json")
            return
        from .recommend import PROFILES

        profile = (self._params().get("profile") or ["default"])[0]
        if profile not in PROFILES:
            self._reply(_json(400, {"error": f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}"}))
            return
        self._run(("recommend", body, profile))

    def _health(self) -> None:
        app = self.server.app
        counts = app.dataset.counts
        self._reply(_json(200, {
            "status": "ok",
            "workers": {"configured": app.pool.size, "alive": app.pool.alive(), "replaced": app.pool.replaced},
            "readOnly": not app.config.update_token,
            "defaultGraphTriples": counts.get("", 0),
            "patients": app.dataset.patients,
            "skipped": [s.to_dict() for s in app.dataset.skipped],
            "limits": {"timeoutSeconds": app.config.timeout, "maxResults": app.config.max_results,
                       "maxBodyBytes": app.config.max_body},
        }))

    def _static(self, name: str) -> None:
        if name not in STATIC_FILES:
            self._error(404, f"no such file: {name}")
            return
        body = (STATIC_DIR / name).read_bytes()
        headers = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"}
        self._send(200, STATIC_FILES[name], body, headers)


def _refusal(keyword: str) -> str:
    if keyword == "SERVICE":
        return ("SERVICE (federated query) is refused: this endpoint never calls other hosts. "
                "(A prefixed name such as ex:service is fine; a word `service` or `load` elsewhere is read as the keyword.)")
    return ("LOAD is refused: this endpoint never fetches or reads documents. "
            "(A prefixed name such as ex:load is fine; a word `service` or `load` elsewhere is read as the keyword.)")


def service_description(endpoint: str, app: EndpointServer) -> list[ox.Triple]:
    """The SPARQL 1.1 Service Description of the endpoint, as triples."""
    def n(iri: str) -> ox.NamedNode:
        return ox.NamedNode(iri)

    def integer(value: int) -> ox.Literal:
        return ox.Literal(str(value), datatype=n("http://www.w3.org/2001/XMLSchema#integer"))

    service, dataset, default = ox.BlankNode(), ox.BlankNode(), ox.BlankNode()
    a = n(RDF_TYPE)
    out = [
        ox.Triple(service, a, n(SD + "Service")),
        ox.Triple(service, n(SD + "endpoint"), n(endpoint)),
        ox.Triple(service, n(SD + "supportedLanguage"), n(SD + "SPARQL11Query")),
        ox.Triple(service, n(RDFS + "label"), ox.Literal("myeloma-kg SPARQL endpoint")),
        ox.Triple(service, n(RDFS + "comment"), ox.Literal(
            f"Read-{'write with a bearer token' if app.config.update_token else 'only'}. SERVICE and LOAD are refused. "
            f"Limits: {app.config.timeout:g} s per query, {app.config.max_results} results, "
            f"{app.config.max_body} bytes per request body. The default graph (the knowledge base with its "
            f"OWL 2 RL inferences) can be named <{KB_GRAPH}> in default-graph-uri; each patient is a named graph "
            "named by its IRI.")),
    ]
    if app.config.update_token:
        out.append(ox.Triple(service, n(SD + "supportedLanguage"), n(SD + "SPARQL11Update")))
    for fmt in ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                "Turtle", "N-Triples", "JSON-LD", "RDF_XML"):
        out.append(ox.Triple(service, n(SD + "resultFormat"), n(FORMATS_NS + fmt)))
    out += [
        ox.Triple(service, n(SD + "defaultDataset"), dataset),
        ox.Triple(dataset, a, n(SD + "Dataset")),
        ox.Triple(dataset, n(SD + "defaultGraph"), default),
        ox.Triple(default, a, n(SD + "Graph")),
        ox.Triple(default, n(VOID + "triples"), integer(app.dataset.counts.get("", 0))),
    ]
    for name, count in sorted(app.dataset.counts.items()):
        if not name:
            continue
        node, graph = ox.BlankNode(), ox.BlankNode()
        out += [
            ox.Triple(dataset, n(SD + "namedGraph"), node),
            ox.Triple(node, a, n(SD + "NamedGraph")),
            ox.Triple(node, n(SD + "name"), n(name)),
            ox.Triple(node, n(SD + "graph"), graph),
            ox.Triple(graph, a, n(SD + "Graph")),
            ox.Triple(graph, n(VOID + "triples"), integer(count)),
        ]
    return out


class EndpointServer:
    """The endpoint: dataset, worker pool and HTTP server (``start`` / ``stop``, or a context manager).

    ``port=0`` picks a free port (see :attr:`port` and :attr:`url` after :meth:`start`).
    """

    def __init__(self, config: EndpointConfig, dataset: Dataset | None = None) -> None:
        self.config = config
        self.dataset = dataset
        self.pool: WorkerPool | None = None  # type: ignore[assignment]
        self.recommend_slots = threading.BoundedSemaphore(1)
        self.httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1] if self.httpd else self.config.port

    @property
    def url(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{self.port}"

    def start(self, *, background: bool = True) -> EndpointServer:
        """Load the data, start the workers and listen (in a thread unless ``background`` is false)."""
        if self.dataset is None:
            self.dataset = Dataset(self.config.patients)
        settings = {"max_results": self.config.max_results, "max_memory_mb": self.config.max_memory_mb}
        self.pool = WorkerPool(self.dataset, max(1, self.config.workers), settings)
        self.recommend_slots = threading.BoundedSemaphore(max(1, self.config.workers - 1))
        try:
            self.pool.start()
        except BaseException:
            self.pool.close()
            raise
        try:
            self.httpd = _HTTPServer((self.config.host, self.config.port), _Handler)
        except OSError:
            self.pool.close()
            raise
        self.httpd.app = self
        if background:
            self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                            daemon=True, name="myeloma-kg-http")
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C or SIGTERM), then stop the workers."""
        assert self.httpd is not None
        try:
            self.httpd.serve_forever(poll_interval=0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop listening and stop the workers."""
        if self.httpd is not None:
            if self._thread is not None:
                self.httpd.shutdown()
                self._thread.join(timeout=5)
            self.httpd.server_close()
            self.httpd = None
        if self.pool is not None:
            self.pool.close()

    def __enter__(self) -> EndpointServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(config: EndpointConfig, echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> None:
    """Run the endpoint in the foreground (``myeloma-kg serve``)."""
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        echo(f"warning: listening on {config.host}: the endpoint is reachable from other machines")
    echo("loading the knowledge base" + (f" and the patients of {config.patients}" if config.patients else "") + " ...")
    dataset = Dataset(config.patients)
    for skipped in dataset.skipped:
        echo(f"skipped {skipped.source} ({skipped.patient or 'no id'}): {skipped.reasons[0] if skipped.reasons else ''}"
             + (f" (+{len(skipped.reasons) - 1} more)" if len(skipped.reasons) > 1 else ""))
    server = EndpointServer(config, dataset)
    server.start(background=False)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    mode = "updates with the bearer token" if config.update_token else "read-only"
    echo(f"SPARQL endpoint at {server.url}/sparql ({mode}; {dataset.counts.get('', 0)} triples in the default "
         f"graph, {len(dataset.patients)} patient graph(s)); query page at {server.url}/ — Ctrl-C to stop")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        echo("stopped")

