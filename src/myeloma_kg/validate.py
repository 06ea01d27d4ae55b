"""SHACL validation of patient documents, reported as typed violations with document field paths.

The contract is ``shapes/patient.shapes.ttl``. :func:`validate` runs, in order:

1. typed pre-checks of the JSON/YAML document (:mod:`myeloma_kg.precheck`) for what JSON-LD would silently
   drop or mangle (``lines: "VRd"``, ``assessmentDate: null``, ``age: true``);
2. the JSON-LD conversion to RDF (:class:`~myeloma_kg.patient.PatientDocument`);
3. SHACL validation of the patient graph plus a slim graph of the knowledge base's types (every drug
   ``a mkg:Drug``, every regimen or procedure ``a mkg:TreatmentOption``, and ``mkg:hasComponent``), so that
   unknown drug and regimen ids are caught by the shapes. Three engines give the same results: ``rudof``
   (pyrudof for the core constraints, one pyoxigraph query per SHACL-SPARQL constraint; a few milliseconds
   a patient, the default when pyrudof is installed), ``oxigraph`` (pySHACL over pyoxigraph) and
   ``rdflib`` (pySHACL over rdflib, the reference);
4. a mapping of every SHACL result back to the document: focus nodes and values become field paths such
   as ``lines[1].drugs[0]`` (0-based list indices, as in the document), and unknown ids and controlled
   values get "did you mean" suggestions.

:func:`validate_many` validates a batch of converted documents together (one pyrudof run, one pyoxigraph
store) and returns exactly the reports :func:`validate` would, several times faster.

Validation returns a :class:`ValidationReport`; it raises only when asked (:meth:`~ValidationReport.raise_for_violations`),
or when the input cannot be read at all (:class:`~myeloma_kg.errors.ParseError`).

>>> report = validate(EXAMPLES_DIR / "pt-017.yaml")
>>> report.conforms, report.violations, report.warnings
(True, [], [])
>>> bad = validate({"id": "pt-9", "assessmentDate": "2026-11-01", "age": "sixty"})
>>> bad.conforms
False
>>> [(v.path, v.severity) for v in bad.violations]
[('age', 'Violation')]
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, SH, XSD

from .errors import DataError, ParseError, PatientInvalidError
from .io import RawDocument, read_documents
from .namespaces import BASE, MKG
from .patient import NODE_PATHS, PRECHECK_ISSUES, PatientDocument, patient_context, rdflib_term
from .precheck import _SAFE_IN_IDS, VIOLATION, WARNING, Issue, precheck
from .resources import shapes_dir

__all__ = [
    "ENGINES",
    "ValidationReport",
    "Violation",
    "default_engine",
    "shapes_graph",
    "validate",
    "validate_file",
    "validate_many",
    "validate_raw",
]

PSH = "https://w3id.org/myeloma-kg/shapes/patient#"
#: Bundled example patient documents (``pt-017.yaml`` is the README's example).
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
_SEVERITIES = {SH.Violation: VIOLATION, SH.Warning: WARNING, SH.Info: "Info"}


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Violation:
    """One validation result, located in the patient document.

    :param patient: the patient id (``None`` when the document has none).
    :param path: the field path inside the document, e.g. ``lines[1].drugs[0]`` or ``relapse.kind``
        (list indices are 0-based, as in the document); ``""`` for the document as a whole.
    :param message: what is wrong and how to fix it, for a clinician.
    :param severity: ``"Violation"`` (the document is invalid) or ``"Warning"`` (incomplete but usable).
    :param shape: the SHACL shape (its local name in the patient shapes) or ``precheck``/``parse``.
    :param constraint: the SHACL constraint component or SPARQL constraint that failed.
    :param value: the offending value as written, when there is one.
    """

    patient: str | None
    path: str
    message: str
    severity: str = VIOLATION
    shape: str | None = None
    constraint: str | None = None
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "patient": self.patient,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
            "shape": self.shape,
            "constraint": self.constraint,
            "value": self.value,
        }

    def __str__(self) -> str:
        return f"{self.patient or '-'} / {self.path or '(document)'} / {self.message} / {self.severity}"


@dataclass
class ValidationReport:
    """The outcome of validating one patient document.

    ``conforms`` is true when there is no Violation-severity result (warnings are allowed).
    ``error`` is set (and ``conforms`` false) when the document could not be read or converted at all.
    """

    patient: str | None
    violations: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    source: str | None = None
    position: int | None = None
    error: DataError | None = None
    seconds: float = 0.0

    @property
    def conforms(self) -> bool:
        """True when the document has no violation (warnings allowed) and could be read."""
        return self.error is None and not self.violations

    @property
    def results(self) -> list[Violation]:
        """Violations then warnings."""
        return [*self.violations, *self.warnings]

    def raise_for_violations(self) -> ValidationReport:
        """Raise :class:`~myeloma_kg.errors.PatientInvalidError` if the document does not conform.

        :returns: the report itself, so that calls can be chained.
        :raises PatientInvalidError: with this report as ``.report``.
        :raises DataError: the reading error itself (for example a :class:`ParseError`), when the
            document could not be read.
        """
        if self.error is not None:
            raise self.error
        if not self.conforms:
            raise PatientInvalidError(self, patient=self.patient)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: patient, source, conforms, violations, warnings (and error, if any)."""
        out: dict[str, Any] = {
            "patient": self.patient,
            "source": self.source,
            "position": self.position,
            "conforms": self.conforms,
            "violations": [v.to_dict() for v in self.violations],
            "warnings": [w.to_dict() for w in self.warnings],
        }
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


# ---------------------------------------------------------------------------------------------- shapes, KB


@cache
def shapes_graph() -> Graph:
    """The patient shapes (``shapes/patient.shapes.ttl``), parsed once."""
    graph = Graph()
    graph.parse(shapes_dir() / "patient.shapes.ttl", format="turtle")
    return graph


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass
class _Catalog:
    """Known ids of one kind (drug or regimen) with their labels, for suggestions."""

    what: str
    ids: set[str] = field(default_factory=set)
    by_norm: dict[str, list[str]] = field(default_factory=dict)

    def add(self, identifier: str, *labels: str) -> None:
        self.ids.add(identifier)
        for text in (identifier, *labels):
            key = _norm(text)
            if key and identifier not in self.by_norm.setdefault(key, []):
                self.by_norm[key].append(identifier)

    def suggest(self, wrong: str, n: int = 3) -> list[str]:
        """The closest known ids to ``wrong`` (exact match of a label first, then by similarity).

        >>> c = _Catalog("drug"); c.add("lenalidomide", "Lenalidomide", "len"); c.add("pomalidomide")
        >>> c.suggest("lenalidomid")
        ['lenalidomide']
        """
        key = _norm(wrong)
        if key in self.by_norm:
            return sorted(self.by_norm[key])[:n]
        out: list[str] = []
        for close in _closest(key, list(self.by_norm), n * 2):
            for identifier in sorted(self.by_norm[close]):
                if identifier not in out:
                    out.append(identifier)
        return out[:n]


def _closest(word: str, candidates: list[str], n: int, cutoff: float = 0.6) -> list[str]:
    """The candidates most similar to ``word``: those within 0.05 of the best ratio, at least ``cutoff``."""
    scored = []
    for candidate in candidates:
        matcher = difflib.SequenceMatcher(None, word, candidate)
        if matcher.real_quick_ratio() >= cutoff and matcher.quick_ratio() >= cutoff:
            ratio = matcher.ratio()
            if ratio >= cutoff:
                scored.append((ratio, candidate))
    if not scored:
        return []
    scored.sort(key=lambda item: (-item[0], item[1]))
    best = scored[0][0]
    return [candidate for ratio, candidate in scored if ratio >= best - 0.05][:n]


@dataclass
class _KnowledgeTypes:
    """What validation needs from the knowledge base: a slim type graph and the id catalogues."""

    graph: Graph
    drugs: _Catalog
    regimens: _Catalog
    ox_quads: list[Any] | None = None
    predicates: frozenset[Any] = frozenset()  # the predicates of the type graph
    batch: dict[str, Any] = field(default_factory=dict)  # what validate_many() derives from it, built once


_KB_QUERY = """
PREFIX mkg: <https://w3id.org/myeloma-kg/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT DISTINCT ?kind ?x ?label WHERE {
    { ?x a/rdfs:subClassOf* mkg:Drug . BIND ("drug" AS ?kind) }
    UNION
    { ?x a/rdfs:subClassOf* mkg:TreatmentOption . BIND ("option" AS ?kind) }
    OPTIONAL { ?x rdfs:label|skos:altLabel ?label }
}
"""

_kb_cache: dict[int, tuple[Graph, _KnowledgeTypes]] = {}
_kb_lock = threading.Lock()


#: What the knowledge base says for validation, as plain data: (kind, node IRI, label or None) in the order
#: of _KB_QUERY's rows, and the components of each option.
_TypeRows = tuple[tuple[tuple[str, str, "str | None"], ...], dict[str, tuple[str, ...]]]


def _type_rows(kb_graph: Graph) -> _TypeRows:
    """The drugs and options of a knowledge-base graph with their labels and components (_KB_QUERY)."""
    rows: list[tuple[str, str, str | None]] = []
    components: dict[str, tuple[str, ...]] = {}
    for row in kb_graph.query(_KB_QUERY):
        node, label = row.x, row.label  # type: ignore[union-attr]
        if not isinstance(node, URIRef):
            continue
        kind = str(row.kind)  # type: ignore[union-attr]
        rows.append((kind, str(node), str(label) if label is not None else None))
        if kind != "drug" and str(node) not in components:
            components[str(node)] = tuple(str(c) for c in kb_graph.objects(node, MKG.hasComponent)
                                          if isinstance(c, URIRef))
    return tuple(rows), components


def _types_from_rows(rows: _TypeRows) -> _KnowledgeTypes:
    """The slim type graph and the id catalogues of :func:`_type_rows`."""
    slim = Graph()
    drugs, regimens = _Catalog("drug"), _Catalog("regimen")
    for kind, iri, label in rows[0]:
        node = URIRef(iri)
        local = unquote(iri.rsplit("/", 1)[-1])
        labels = [label] if label is not None else []
        if kind == "drug":
            slim.add((node, RDF.type, MKG.Drug))
            drugs.add(local, *labels)
        else:
            slim.add((node, RDF.type, MKG.TreatmentOption))
            regimens.add(local, *labels)
            for component in rows[1][iri]:
                slim.add((node, MKG.hasComponent, URIRef(component)))
    return _KnowledgeTypes(slim, drugs, regimens, predicates=frozenset(slim.predicates()))


@cache
def _packaged_types() -> _KnowledgeTypes:
    """The packaged knowledge base's types, read from the on-disk cache: a new process (a cohort worker, the
    command line) then loads neither the whole knowledge-base graph nor rdflib's SPARQL engine (~0.7 s)."""
    from .cache import cached
    from .kb import load_kb_graph
    from .resources import ontology_dir

    inputs = sorted(ontology_dir().glob("*.ttl")) + [Path(__file__)]
    return _types_from_rows(cached("validation-types", inputs, lambda: _type_rows(load_kb_graph())))


def _knowledge_types(kb_graph: Graph | None) -> _KnowledgeTypes:
    """Build (once per knowledge-base graph) the slim type graph and the id catalogues."""
    if kb_graph is None:
        with _kb_lock:
            return _packaged_types()
    with _kb_lock:
        hit = _kb_cache.get(id(kb_graph))
        if hit is not None and hit[0] is kb_graph:
            return hit[1]
    types = _types_from_rows(_type_rows(kb_graph))
    with _kb_lock:
        if len(_kb_cache) > 8:
            _kb_cache.clear()
        _kb_cache[id(kb_graph)] = (kb_graph, types)
    return types


# ---------------------------------------------------------------------------------------------- context


@dataclass
class _ContextMaps:
    """The JSON-LD context read backwards: property IRI -> document key, value IRI -> code."""

    keys: dict[URIRef, str]
    codes: dict[URIRef, str]
    vocabularies: tuple[str, ...]


def _expand(term: str) -> str:
    if term.startswith("mkg:"):
        return BASE + term[4:]
    if term.startswith("xsd:"):
        return "http://www.w3.org/2001/XMLSchema#" + term[4:]
    return term


@cache
def _context_maps() -> _ContextMaps:
    context = patient_context()
    keys: dict[URIRef, str] = {}
    codes: dict[URIRef, str] = {}
    vocabularies: list[str] = []
    for key, definition in context.items():
        if not isinstance(definition, dict) or "@id" not in definition:
            continue
        keys[URIRef(_expand(definition["@id"]))] = key
        scoped = definition.get("@context", {})
        for code, iri in scoped.items():
            if code == "@vocab":
                vocabularies.append(iri)
            elif isinstance(iri, str):
                codes[URIRef(_expand(iri))] = code
    return _ContextMaps(keys, codes, tuple(sorted(set(vocabularies), key=len, reverse=True)))


def _value_text(value: Any) -> str | None:
    """The value as the document author wrote it (a code, an id, or the literal's text)."""
    if value is None or isinstance(value, BNode):
        return None
    if isinstance(value, URIRef):
        maps = _context_maps()
        if value in maps.codes:
            return maps.codes[value]
        text = str(value)
        for vocabulary in maps.vocabularies:
            if text.startswith(vocabulary):
                return unquote(text[len(vocabulary):])
        if text.startswith(BASE):
            return unquote(text[len(BASE):])
        return text
    return str(value)


# ---------------------------------------------------------------------------------------------- paths

_LIST_KEYS = {"lines", "labs", "drugs", "findings", "stoppedForToxicity", "refractoryTo"}
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _navigate(data: Any, path: str) -> Any:
    """The value at ``path`` inside ``data`` (``None`` when absent)."""
    current = data
    for name, index in _TOKEN.findall(path):
        if name:
            if not isinstance(current, dict):
                return None
            current = current.get(name)
        else:
            if not isinstance(current, list) or int(index) >= len(current):
                return None
            current = current[int(index)]
    return current


def _item_key(item: Any) -> str:
    if isinstance(item, dict):
        return ""
    return quote(str(item).strip(), safe=_SAFE_IN_IDS)


class _PathIndex:
    """Maps RDF nodes of a patient graph back to document field paths."""

    def __init__(self, graph: Graph, patient: URIRef, data: dict[str, Any] | None, labels: dict[str, str]) -> None:
        self.graph = graph
        self.data = data
        self.keys = _context_maps().keys
        self.paths: dict[Any, str] = {BNode(label): path for label, path in labels.items()}
        self.paths[patient] = ""
        self._walk(patient, "", {patient})

    def _walk(self, node: Any, path: str, seen: set[Any]) -> None:
        groups: dict[str, list[Any]] = {}
        for predicate, obj in self.graph.predicate_objects(node):
            key = self.keys.get(predicate)  # type: ignore[arg-type]
            if key is None or isinstance(obj, Literal) or obj in seen:
                continue
            if isinstance(obj, URIRef) and (obj, None, None) not in self.graph:
                continue  # a reference to a drug, regimen or code, not a nested mapping
            groups.setdefault(key, []).append(obj)
        for key, children in groups.items():
            children.sort(key=lambda child: self._order(key, child))
            for i, child in enumerate(children):
                if child in seen:
                    continue
                seen.add(child)
                if child not in self.paths:
                    where = f"{path}.{key}" if path else key
                    if key in _LIST_KEYS or len(children) > 1:
                        where += f"[{i}]"
                    self.paths[child] = where
                self._walk(child, self.paths[child], seen)

    def _order(self, key: str, node: Any) -> tuple[Any, ...]:
        if key == "lines":
            number = self.graph.value(node, MKG.lineNumber)
            value = number.toPython() if isinstance(number, Literal) else None
            return (0 if isinstance(value, int) else 1, value if isinstance(value, int) else 0, str(node))
        date = self.graph.value(node, MKG.date) or self.graph.value(node, MKG.start)
        return (str(date) if date is not None else "~", str(node))

    def locate(self, focus: Any, result_path: Any, value: Any) -> str:
        """The document path of a SHACL result."""
        if value is not None and not isinstance(value, Literal) and value in self.paths and value != focus:
            if result_path is None or (focus, result_path, value) in self.graph:
                return self.paths[value]
        base = self.paths.get(focus, "")
        key = self.keys.get(result_path) if isinstance(result_path, URIRef) else None
        if key is None:
            return base
        where = f"{base}.{key}" if base else key
        if value is None or self.data is None:
            return where
        container = _navigate(self.data, where)
        if isinstance(container, list):
            wanted = _item_key(value) if isinstance(value, Literal) else quote(_value_text(value) or "", safe=_SAFE_IN_IDS)
            for i, item in enumerate(container):
                if _item_key(item) == wanted:
                    return f"{where}[{i}]"
        return where


# ---------------------------------------------------------------------------------------------- engine


def _shape_name(node: Any) -> str | None:
    if node is None:
        return None
    text = str(node)
    if text.startswith(PSH):
        return text[len(PSH):]
    if isinstance(node, BNode):
        return None
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


@cache
def _shape_codes(shape: URIRef | BNode) -> tuple[str, ...]:
    """The document codes a shape's ``sh:in`` allows (for "did you mean" hints)."""
    graph = shapes_graph()
    head = graph.value(shape, SH["in"])
    if head is None:
        return ()
    maps = _context_maps()
    return tuple(maps.codes.get(item, str(item)) for item in Collection(graph, head))  # type: ignore[arg-type]


_UNKNOWN_DRUG = {PSH + n for n in ("UnknownLineDrugConstraint", "UnknownAdministeredDrugConstraint", "UnknownMaintenanceDrugConstraint")}
_UNKNOWN_REGIMEN = PSH + "UnknownRegimenConstraint"


def _suggest_code(wrong: str, codes: tuple[str, ...]) -> list[str]:
    lowered = {code.lower(): code for code in codes}
    if wrong.lower() in lowered:
        return [lowered[wrong.lower()]]
    return [lowered[c] for c in _closest(wrong.lower(), list(lowered), 2, cutoff=0.5)]


def _did_you_mean(options: list[str]) -> str:
    if not options:
        return ""
    if len(options) == 1:
        return f" Did you mean {options[0]}?"
    return f" Did you mean {', '.join(options[:-1])} or {options[-1]}?"


def _compact_query(text: str) -> str:
    r"""The query on one line (pySHACL scans each query with regular expressions on every focus node).

    >>> _compact_query("SELECT $this WHERE {\n    $this ?p ?o .\n}")
    'SELECT $this WHERE { $this ?p ?o . }'
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines) if any("#" in line for line in lines) else " ".join(lines)


class _FrozenGraph(Graph):
    """A read-only graph that memoises triple-pattern look-ups.

    pySHACL reads every shape's parameters from the shapes graph on every run; with the shapes fixed,
    caching those look-ups removes most of its per-patient cost.
    """

    def __init__(self, source: Graph) -> None:
        super().__init__()
        for s, p, o in source:
            if p in (SH.select, SH.ask) and isinstance(o, Literal):
                o = Literal(_compact_query(str(o)))
            super().add((s, p, o))
        self.namespace_manager = source.namespace_manager
        self._memo: dict[Any, list[Any]] = {}

    def add(self, triple: Any) -> _FrozenGraph:  # type: ignore[override]
        if triple not in self:  # pySHACL adds a few system triples once; anything else would be a bug
            self._memo.clear()
            super().add(triple)
        return self

    def triples(self, triple: Any) -> Any:  # type: ignore[override]
        try:
            return iter(self._memo[triple])
        except KeyError:
            pass
        except TypeError:  # an unhashable pattern
            return super().triples(triple)
        found = list(super().triples(triple))
        self._memo[triple] = found
        return iter(found)


_local = threading.local()
_VALIDATOR_OPTIONS = {"inplace": True, "allow_warnings": True, "advanced": False, "inference": "none"}


def _prepared_shapes() -> Any:
    """The pySHACL ShapesGraph over the frozen patient shapes, harvested once per thread."""
    shapes = getattr(_local, "shapes", None)
    if shapes is None:
        from pyshacl import ShapesGraph
        from pyshacl.monkey import apply_patches

        apply_patches()
        shapes = ShapesGraph(_FrozenGraph(shapes_graph()))
        _ = shapes.shapes  # harvest the shapes now
        _local.shapes = shapes
    return shapes


class _Unsupported(Exception):
    """The rudof engine cannot vouch for pySHACL's answer on this document; the reference engine runs instead."""


@dataclass(frozen=True)
class _RawResult:
    """One SHACL validation result as an engine reports it, before it is located in the document."""

    focus: Any
    path: Any
    value: Any
    severity: Any
    shape: Any
    source_constraint: Any
    component: Any
    message: str | None  # the first of the result's messages in sorted order


def _report_results(report: Graph) -> list[_RawResult]:
    """The results of a pySHACL report graph."""
    out = []
    for result in report.subjects(RDF.type, SH.ValidationResult):
        messages = sorted(str(m) for m in report.objects(result, SH.resultMessage))
        out.append(
            _RawResult(
                focus=report.value(result, SH.focusNode),
                path=report.value(result, SH.resultPath),
                value=report.value(result, SH.value),
                severity=report.value(result, SH.resultSeverity),
                shape=report.value(result, SH.sourceShape),
                source_constraint=report.value(result, SH.sourceConstraint),
                component=report.value(result, SH.sourceConstraintComponent),
                message=messages[0] if messages else None,
            )
        )
    return out


#: Validation engines: ``rudof`` (pyrudof + Oxigraph, fast), ``oxigraph`` (pySHACL over pyoxigraph) and
#: ``rdflib`` (pySHACL over rdflib, the reference). They give the same reports (tests/test_validate_engines.py);
#: the one known exception is a Turtle literal such as "yes"^^xsd:boolean, which rdflib stores as an ill-typed
#: "false": copied into Oxigraph it turns well formed, so only ``oxigraph`` accepts it.
ENGINES = ("rudof", "oxigraph", "rdflib")


@cache
def _rudof_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyrudof") is not None


def default_engine() -> str:
    """The engine :func:`validate` uses when none is given: ``rudof`` when pyrudof is installed, else ``oxigraph``."""
    return "rudof" if _rudof_available() else "oxigraph"


#: Why the rudof engine handed documents to the reference engine (reason -> count), for tests and benchmarks.
RUDOF_FALLBACKS: Counter[str] = Counter()


def _engine_results(patient_graph: Graph, types: _KnowledgeTypes, engine: str) -> list[_RawResult]:
    """Run one engine over the patient graph plus the knowledge base's types.

    ``engine="rudof"`` runs the core constraints with pyrudof and the SHACL-SPARQL constraints with
    pyoxigraph (see :func:`_run_rudof`); a document it cannot vouch for goes to ``oxigraph``.
    ``engine="oxigraph"`` runs pySHACL over an in-memory pyoxigraph store, so that the SHACL-SPARQL
    constraints are parsed and run by Oxigraph; ``engine="rdflib"`` is pySHACL's plain rdflib mode, kept
    as the reference. They give the same results (tests/test_validate_engines.py, and ENGINES for the one
    known exception).
    """
    if engine == "rudof":
        try:
            return _run_rudof(patient_graph, types)
        except _Unsupported as exc:
            RUDOF_FALLBACKS[str(exc)] += 1
            engine = "oxigraph"
    if engine == "oxigraph":
        try:
            return _report_results(_run_shacl_oxigraph(patient_graph, types))
        except ValueError:  # a term Oxigraph rejects (an IRI rdflib tolerated): use the reference path
            pass
    elif engine != "rdflib":
        raise ValueError(f"unknown validation engine {engine!r}; use one of {', '.join(ENGINES)}")
    from pyshacl import validate as shacl_validate

    data = Graph()
    data += types.graph
    data += patient_graph
    _, report, _ = shacl_validate(
        data, shacl_graph=shapes_graph(), inplace=True, allow_warnings=True, advanced=False, inference="none"
    )
    return _report_results(report)  # type: ignore[arg-type]


def _run_shacl_oxigraph(patient_graph: Graph, types: _KnowledgeTypes) -> Graph:
    import pyoxigraph as ox
    from pyshacl import Validator
    from pyshacl.graph_abstraction import DataGraph

    store = ox.Store()
    store.extend(_ox_quads(types) + _ox_patient_quads(patient_graph))
    validator = Validator(DataGraph.from_oxigraph_store(store), shacl_graph=Graph(), options=dict(_VALIDATOR_OPTIONS))
    validator.shacl_graph = _prepared_shapes()
    _, report, _ = validator.run()
    return report  # type: ignore[no-any-return]


def _ox_quads(types: _KnowledgeTypes) -> list[Any]:
    if types.ox_quads is None:
        types.ox_quads = _ox_patient_quads(types.graph)
    return types.ox_quads


def _ox_patient_quads(graph: Graph) -> list[Any]:
    import pyoxigraph as ox

    return [ox.Quad(_to_ox(s), _to_ox(p), _to_ox(o)) for s, p, o in graph]


def _to_ox(term: Any) -> Any:
    """An rdflib term as a pyoxigraph term (as pySHACL's ``to_ox`` converts it; pySHACL is not imported)."""
    import pyoxigraph as ox

    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.language is not None:
            return ox.Literal(str(term), language=term.language)
        return ox.Literal(str(term), datatype=None if term.datatype is None else ox.NamedNode(str(term.datatype)))
    return ox.NamedNode(str(term))


def _to_rdf(term: Any) -> Any:
    """A pyoxigraph term as an rdflib term (as pySHACL's ``to_rdf`` converts it)."""
    import pyoxigraph as ox

    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language is not None:
            return Literal(term.value, lang=term.language)
        return Literal(term.value, datatype=None if term.datatype is None else URIRef(term.datatype.value))
    return URIRef(term.value)


# ---------------------------------------------------------------------------------------------- engine: rudof
#
# pyrudof (Rust SHACL) validates the core constraints (counts, datatypes, sh:in, sh:or, node kinds, ranges):
# it holds the shapes without their sh:sparql constraints and a base graph, and each patient is staged on top
# (begin_staging -> read_data(merge) -> validate_shacl -> rollback_staging), about 1.5 ms a patient.
#
# The SHACL-SPARQL constraints run on pyoxigraph, as in the "oxigraph" engine, but one query per constraint
# covers all the constraint's focus nodes (the shape's target is joined into the query) instead of one query
# per focus node. pyrudof's own sh:sparql support cannot be used here: it binds $this with VALUES, which
# cannot hold a blank node (every line, drug administration, transplant ... is one), and it reports neither
# sh:sourceConstraint nor messages with {?var} filled in.
#
# Where pyrudof's core verdicts differ from pySHACL's, the data handed to pyrudof is adjusted or the document
# goes to the reference engine:
# * pyrudof does not check that a literal is well formed for every datatype (it accepts "2021-02-30"^^xsd:date
#   and "yes"^^xsd:boolean). A literal pySHACL finds ill-formed (rdflib's ill_typed, or a value of the wrong
#   Python type) is handed over with a datatype of its own, which no sh:datatype or sh:or accepts; its value
#   is still reported as written.
# * NaN and infinite doubles, and numbers pyrudof cannot compare exactly (beyond 28-digit decimals, or doubles
#   with more than 15 significant digits: see _exact_in_pyrudof), compare differently under
#   sh:minInclusive/sh:maxInclusive: such a document goes to the reference engine, as does any result the
#   mapping cannot place with certainty (see _Unsupported). Documents as people write them never need it.

_ILL_FORMED = "https://w3id.org/myeloma-kg/validate#ill-formed-literal"
_NO_VALUE_COMPONENTS = {SH.MinCountConstraintComponent, SH.MaxCountConstraintComponent}
_EMPTY_BASE = "<https://w3id.org/myeloma-kg/validate#base> <https://w3id.org/myeloma-kg/validate#is> \"empty\" .\n"
_TARGET_VAR = "?mkgValidateTargetSource"


#: The Python value pySHACL's sh:datatype requires of a literal of each datatype it checks.
_PYTHON_TYPES: dict[URIRef, Any] = {
    XSD.string: (str, bytes), RDF.langString: (str, bytes), XSD.integer: int, XSD.float: float,
    XSD.decimal: Decimal, XSD.boolean: bool, XSD.date: dt.date, XSD.time: dt.time, XSD.dateTime: dt.datetime,
}


def _well_formed(literal: Literal) -> bool:
    """Whether pySHACL's sh:datatype would accept the literal under its own datatype (it is well formed)."""
    if getattr(literal, "ill_typed", None) is True:
        return False
    expected = _PYTHON_TYPES.get(literal.datatype)  # type: ignore[arg-type]
    return expected is None or isinstance(literal.value, expected)


def _exact_in_pyrudof(value: float | Decimal) -> bool:
    """Whether pyrudof compares this number with sh:minInclusive/sh:maxInclusive exactly, as pySHACL does.

    pyrudof compares numbers as decimals of 28 digits: it rounds tiny numbers (-1e-30 passes minInclusive 0),
    finds huge ones incomparable, and rounds doubles with more than about 15 significant digits
    (100.00000000000001 passes maxInclusive 100). Numbers as people write them are well inside.
    """
    if isinstance(value, bool) or value == 0:
        return True
    if isinstance(value, int):
        return abs(value) < 10**18
    if isinstance(value, Decimal):
        _, digits, exponent = value.as_tuple()  # not normalize(): it rounds to the context's 28 digits
        text = "".join(map(str, digits)).lstrip("0")
        significant = text.rstrip("0")
        return abs(value) < 10**18 and len(significant) <= 18 and int(exponent) + len(text) - len(significant) >= -18
    mantissa = repr(abs(value)).split("e")[0].replace(".", "").strip("0")
    return 1e-15 <= abs(value) < 1e15 and len(mantissa) <= 15


def _nt_term(term: Any) -> str:
    """A term in N-Triples for pyrudof (an ill-formed literal gets the sentinel datatype)."""
    if isinstance(term, URIRef):
        return f"<{term}>"
    if isinstance(term, BNode):
        return f"_:{term}"
    value = term.value
    if isinstance(value, float) and not math.isfinite(value):
        raise _Unsupported("non-finite number")
    if isinstance(value, Decimal) and not value.is_finite():
        raise _Unsupported("non-finite number")
    if isinstance(value, (int, float, Decimal)) and not _exact_in_pyrudof(value) and _well_formed(term):
        raise _Unsupported("number beyond pyrudof's exact range")
    text = str(term).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    if term.language:
        return f'"{text}"@{term.language}'
    if term.datatype is None:
        return f'"{text}"'
    if not _well_formed(term):
        return f'"{text}"^^<{_ILL_FORMED}>'
    return f'"{text}"^^<{term.datatype}>'


def _ntriples(graph: Graph) -> str:
    return "".join(f"{_nt_term(s)} {_nt_term(p)} {_nt_term(o)} .\n" for s, p, o in graph)


@dataclass(frozen=True)
class _SparqlCheck:
    """One SHACL-SPARQL constraint, compiled to a query over all the focus nodes of its shape."""

    shape: Any
    node: Any
    severity: Any
    query: str
    prefixes: dict[str, str]
    messages: tuple[Literal, ...]
    triggers: frozenset[URIRef] | None  # predicates one of which must occur for the shape to have focus nodes


@dataclass
class _RudofPlan:
    """The patient shapes prepared for the rudof engine (built once)."""

    core_shapes: str  # N-Triples: the shapes without sh:sparql
    core_needs_kb: bool  # whether the core constraints can see the knowledge base's type triples
    sparql: list[_SparqlCheck]
    shape_info: dict[Any, tuple[Any, Any, str | None]] = field(default_factory=dict)  # path, severity, message


_WHERE = re.compile(r"\bWHERE\s*\{", re.IGNORECASE)
_PROJECTS_THIS = re.compile(r"\bSELECT\b[^{]*[?$]this\b", re.IGNORECASE)
#: What the knowledge base's slim type graph holds (see _knowledge_types): the core shapes need it only if
#: they could reach these classes or predicates.
_KB_CLASSES = frozenset({MKG.Drug, MKG.TreatmentOption})
_KB_PREDICATES = frozenset({RDF.type, MKG.hasComponent})


def _target_pattern(graph: Graph, shape: Any) -> tuple[str, frozenset[URIRef] | None]:
    """A graph pattern binding ?this to every focus node of ``shape``, and the predicates that trigger it."""
    alternatives: list[str] = []
    triggers: set[URIRef] | None = set()
    for cls in graph.objects(shape, SH.targetClass):
        alternatives.append(f"?this <{RDF.type}>/<{RDFS.subClassOf}>* {cls.n3()} .")
        triggers = None
    for predicate in graph.objects(shape, SH.targetObjectsOf):
        alternatives.append(f"{_TARGET_VAR} {predicate.n3()} ?this .")
        if triggers is not None:
            triggers.add(predicate)  # type: ignore[arg-type]
    for predicate in graph.objects(shape, SH.targetSubjectsOf):
        alternatives.append(f"?this {predicate.n3()} {_TARGET_VAR} .")
        if triggers is not None:
            triggers.add(predicate)  # type: ignore[arg-type]
    for node in graph.objects(shape, SH.targetNode):
        alternatives.append(f"BIND ({node.n3()} AS ?this)")
        triggers = None
    if (shape, RDF.type, RDFS.Class) in graph:
        raise _Unsupported("implicit class target")
    if len(alternatives) == 1 and triggers:
        return alternatives[0], frozenset(triggers)
    union = " UNION ".join("{ " + a + " }" for a in alternatives) or "FILTER (false)"
    return f"{{ SELECT DISTINCT ?this WHERE {{ {union} }} }}", None if triggers is None else frozenset(triggers)


def _declared_prefixes(graph: Graph, node: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for holder in graph.objects(node, SH.prefixes):
        for declaration in graph.objects(holder, SH.declare):
            prefix, namespace = graph.value(declaration, SH.prefix), graph.value(declaration, SH.namespace)
            if prefix is not None and namespace is not None:
                out[str(prefix)] = str(namespace)
    return out


@cache
def _cached_plan() -> _RudofPlan | str:
    try:
        return _build_plan()
    except _Unsupported as exc:  # shapes this engine cannot run: every document goes to the reference engine
        return str(exc)


def _rudof_plan() -> _RudofPlan:
    plan = _cached_plan()
    if isinstance(plan, str):
        raise _Unsupported(plan)
    return plan


def _build_plan() -> _RudofPlan:
    """Split the patient shapes into pyrudof's core shapes and the compiled SHACL-SPARQL constraints."""
    graph = shapes_graph()
    core = Graph()
    for triple in graph:
        if triple[1] != SH.sparql:
            core.add(triple)
    # The core constraints need the knowledge base's types only if they could reach them (they are left out
    # of pyrudof's base graph otherwise, which makes each validation about a third faster).
    core_needs_kb = (
        (None, SH["class"], None) in core
        or (None, SH.targetNode, None) in core
        or any(c in _KB_CLASSES for c in core.objects(None, SH.targetClass))
        or any(p in _KB_PREDICATES for p in core.objects(None, SH.targetObjectsOf))
        or any(p in _KB_PREDICATES for p in core.objects(None, SH.targetSubjectsOf))
    )
    checks: list[_SparqlCheck] = []
    for shape, _, node in sorted(graph.triples((None, SH.sparql, None)), key=lambda t: (str(t[0]), str(t[2]))):
        if (shape, SH.path, None) in graph:
            raise _Unsupported("sh:sparql on a property shape")
        if (node, SH.deactivated, Literal(True)) in graph:
            continue
        select = graph.value(node, SH.select)
        if select is None or (node, SH.ask, None) in graph:
            raise _Unsupported("SPARQL constraint without sh:select")
        text = _compact_query(str(select))
        if not _PROJECTS_THIS.search(text):
            raise _Unsupported("SPARQL constraint that does not project $this")
        target, triggers = _target_pattern(graph, shape)
        where = _WHERE.search(text)
        if where is None:
            raise _Unsupported("SPARQL constraint without WHERE")
        query = text[: where.end()] + " " + target + " " + text[where.end():]
        messages = tuple(graph.objects(node, SH.message)) + tuple(
            m for m in graph.objects(shape, SH.message) if m not in set(graph.objects(node, SH.message))
        )
        if not messages:
            raise _Unsupported("SPARQL constraint without sh:message")
        checks.append(
            _SparqlCheck(
                shape=shape,
                node=node,
                severity=graph.value(shape, SH.severity) or SH.Violation,
                query=query,
                prefixes=_declared_prefixes(graph, node),
                messages=messages,  # type: ignore[arg-type]
                triggers=triggers,
            )
        )
    return _RudofPlan(core.serialize(format="nt"), core_needs_kb, checks)


def _shape_info(plan: _RudofPlan, shape: Any) -> tuple[Any, Any, str | None]:
    """The path, severity and (first, sorted) message of a shape of the patient shapes."""
    info = plan.shape_info.get(shape)
    if info is None:
        graph = shapes_graph()
        messages = sorted(str(m) for m in graph.objects(shape, SH.message))
        info = (graph.value(shape, SH.path), graph.value(shape, SH.severity) or SH.Violation, messages[0] if messages else None)
        plan.shape_info[shape] = info
    return info


class _RudofSession:
    """A pyrudof session holding the core shapes and the base data; patients are staged on top of it."""

    def __init__(self, plan: _RudofPlan, types: _KnowledgeTypes | None) -> None:
        import pyrudof

        self.pyrudof = pyrudof
        self.uses = 0
        self.rudof = pyrudof.Rudof()
        base = _ntriples(types.graph) if types is not None else _EMPTY_BASE
        self.rudof.read_data(base, format=pyrudof.RDFFormat.NTriples, reader_mode=pyrudof.ReaderMode.Strict)
        self.rudof.read_shacl(plan.core_shapes, format=pyrudof.ShaclFormat.NTriples, reader_mode=pyrudof.ReaderMode.Strict)

    def validate(self, ntriples: str) -> list[Any]:
        pyrudof = self.pyrudof
        self.rudof.begin_staging()
        try:
            if ntriples:  # pyrudof refuses empty input
                self.rudof.read_data(
                    ntriples, format=pyrudof.RDFFormat.NTriples, merge=True, reader_mode=pyrudof.ReaderMode.Strict
                )
            return list(self.rudof.validate_shacl())
        finally:
            self.rudof.rollback_staging()


# Documents a pyrudof session validates before it is rebuilt (~0.1 s). Counted in documents, not calls: a
# session validating one document at a time stays as fast and as small over 3,000 documents, while long
# cohort runs (50 documents a call) once slowed and grew; renewing after every 200 single documents cost
# ~0.5 ms a patient.
_SESSION_RENEWAL = 10_000


def _rudof_session(plan: _RudofPlan, types: _KnowledgeTypes, documents: int = 1) -> _RudofSession:
    """This thread's pyrudof session (per process: a forked worker builds its own), about to validate
    ``documents`` documents."""
    key = (os.getpid(), id(types) if plan.core_needs_kb else None)
    sessions: dict[Any, _RudofSession] = getattr(_local, "rudof", None) or {}
    _local.rudof = sessions
    session = sessions.get(key)
    if session is not None:
        session.uses += documents
        if session.uses > _SESSION_RENEWAL:  # see _SESSION_RENEWAL: start afresh
            session = None
    if session is None:
        if len(sessions) > 4:
            sessions.clear()
        session = sessions[key] = _RudofSession(plan, types if plan.core_needs_kb else None)
        session.uses = documents
    return session


def _rudof_lexical(text: str) -> str | None:
    """The lexical form of a literal as pyrudof prints it (``"x"^^xsd:integer``, ``"x"@en``, ``"x"``)."""
    if text.startswith('"'):
        end = text.rfind('"')
        return text[1:end] if end > 0 else None
    return None


def _rudof_matches(text: str, term: Any) -> bool:
    if isinstance(term, URIRef):
        return text == str(term) or text == f"<{term}>"
    if isinstance(term, BNode):
        return text == f"_:{term}"
    lexical = _rudof_lexical(text)
    return (lexical if lexical is not None else text) == str(term)


def _rudof_suffix(literal: Literal) -> str:
    """How pyrudof ends a literal (before any ``>``): ``@en``, the datatype's local name, or the closing quote."""
    if literal.language:
        return f"@{literal.language}"
    if literal.datatype is None or literal.datatype == XSD.string:
        return '"'
    return re.split(r"[#/:]", str(literal.datatype))[-1]


def _rudof_value(entry: Any, focus: Any, path: Any, graph: Graph) -> Any:
    """The data graph term pyrudof reports as an entry's value (pySHACL's sh:value)."""
    text = entry.value
    if text is None:
        raise _Unsupported("result without a value")
    if path is None:  # a node shape's own constraint: the value is the focus node
        if _rudof_matches(text, focus):
            return focus
        raise _Unsupported("node-shape value is not the focus node")
    if not isinstance(path, URIRef):
        raise _Unsupported("complex property path")
    candidates = list(graph.objects(focus, path))
    if len(candidates) == 1:
        return candidates[0]
    matching = [c for c in candidates if _rudof_matches(text, c)]
    if len(matching) > 1 and _rudof_lexical(text) is not None:
        typed = [c for c in matching if isinstance(c, Literal) and text.rstrip(">").endswith(_rudof_suffix(c))]
        matching = typed or matching
    if len(matching) != 1:
        raise _Unsupported("ambiguous value")
    return matching[0]


def _rudof_core(patient_graph: Graph, types: _KnowledgeTypes, plan: _RudofPlan) -> list[_RawResult]:
    session = _rudof_session(plan, types)
    try:
        entries = session.validate(_ntriples(patient_graph))
    except session.pyrudof.RudofError as exc:  # e.g. an IRI rdflib tolerated but N-Triples does not allow
        raise _Unsupported("pyrudof could not read the document") from exc
    return _rudof_entries(entries, patient_graph, plan)


def _rudof_entries(entries: list[Any], patient_graph: Graph, plan: _RudofPlan) -> list[_RawResult]:
    """pyrudof's results for one patient graph as engine results (shared with :func:`validate_many`)."""
    if not entries:
        return []
    nodes: dict[str, Any] = {}
    for s, _, o in patient_graph:
        for term in (s, o):
            if isinstance(term, URIRef):
                nodes[str(term)] = term
            elif isinstance(term, BNode):
                nodes[f"_:{term}"] = term
    out = []
    for entry in entries:
        focus = nodes.get(entry.focus_node)
        if focus is None:
            if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|_:", entry.focus_node):
                raise _Unsupported("focus node outside the patient graph")
            continue  # a literal focus node: pySHACL's results for it are dropped too
        source = entry.source_shape
        if source is None:
            raise _Unsupported("result without a source shape")
        shape = BNode(source[2:]) if source.startswith("_:") else URIRef(source)
        path, severity, message = _shape_info(plan, shape)
        if message is None:
            raise _Unsupported("shape without sh:message")
        component = URIRef(entry.constraint_component)
        value = None if component in _NO_VALUE_COMPONENTS else _rudof_value(entry, focus, path, patient_graph)
        if component == SH.DatatypeConstraintComponent and isinstance(value, Literal) and _well_formed(value):
            expected = shapes_graph().value(shape, SH.datatype)
            if expected is not None and (value.datatype or (None if value.language else XSD.string)) == expected:
                raise _Unsupported("pyrudof rejected a literal pySHACL accepts")
        out.append(_RawResult(focus, path, value, severity, shape, None, component, message))
    return out


def _format_message(message: str, bindings: dict[str, Any]) -> str:
    """Fill ``{?var}``/``{$var}`` in a SPARQL constraint's message, as pySHACL does (and in its order)."""
    for var, val in bindings.items():
        message = re.sub(f"{{[?$]{var}}}", str(val), message)
    return message


def _rudof_sparql(patient_graph: Graph, types: _KnowledgeTypes, plan: _RudofPlan) -> list[_RawResult]:
    import pyoxigraph as ox

    present = set(patient_graph.predicates()) | types.predicates
    checks = [c for c in plan.sparql if c.triggers is None or not c.triggers.isdisjoint(present)]
    if not checks:
        return []
    store = ox.Store()
    store.extend(_ox_quads(types) + _ox_patient_quads(patient_graph))
    out = []
    for check in checks:
        solutions = store.query(check.query, prefixes=check.prefixes)
        names = [v.value for v in solutions.variables]
        for solution in solutions:
            out.append(_sparql_result(check, {n: _to_rdf(v) for n, v in zip(names, solution) if v is not None}))
    return out


def _sparql_result(check: _SparqlCheck, bound: dict[str, Any]) -> _RawResult:
    """One solution of a SHACL-SPARQL constraint's query (variable -> rdflib term) as an engine result."""
    if "failure" in bound:
        raise _Unsupported("SPARQL constraint reported a failure")
    path, value, this = bound.pop("path", None), bound.pop("value", None), bound.pop("this", None)
    if this is None:
        raise _Unsupported("SPARQL solution without $this")
    if value is None:
        value = this  # pySHACL: a node shape's focus node stands for the value
    fill = dict(bound)
    fill.update({"this": this, "value": value} if path is None else {"this": this, "path": path, "value": value})
    messages = sorted(
        _format_message(str(m.value), fill) if isinstance(m, Literal) else str(m) for m in check.messages
    )
    return _RawResult(this, path, value, check.severity, check.shape, check.node, SH.SPARQLConstraintComponent, messages[0])


def _run_rudof(patient_graph: Graph, types: _KnowledgeTypes) -> list[_RawResult]:
    """The rudof engine: pyrudof for the core constraints, pyoxigraph for the SHACL-SPARQL ones."""
    if not _rudof_available():
        raise ValueError("the rudof validation engine needs pyrudof: pip install pyrudof")
    plan = _rudof_plan()
    try:
        sparql = _rudof_sparql(patient_graph, types, plan)
    except ValueError as exc:  # a term Oxigraph rejects
        raise _Unsupported("Oxigraph could not read the document") from exc
    return _rudof_core(patient_graph, types, plan) + sparql


def _result_order(v: Violation) -> tuple[Any, ...]:
    """Results that share a path, message and severity are merged; this order decides which one is kept.

    The result of a datatype check (sh:datatype, or sh:or of datatypes) wins over range checks of the same
    value, so that the report does not depend on the order in which an engine lists its results.
    """
    rank = {"DatatypeConstraintComponent": 0, "OrConstraintComponent": 1}.get(v.constraint or "", 2)
    return (v.path, v.message, v.severity, rank, v.constraint or "", v.value is None, v.value or "", v.shape or "")


def _shacl_results(
    doc: PatientDocument,
    types: _KnowledgeTypes,
    data: dict[str, Any] | None,
    engine: str = "oxigraph",
    results: list[_RawResult] | None = None,
    graph: Any = None,
) -> list[Violation]:
    """The SHACL results of a document, located in it (``results``: the engine's, when already computed;
    ``graph``: the document's graph or a stand-in for it, by default ``doc.graph``)."""
    if graph is None:
        graph = doc.graph
    if results is None:
        results = _engine_results(graph, types, engine)
    patient = URIRef(doc.iri)
    labels = doc.extra.get(NODE_PATHS, {}) if data is not None else {}
    index = _PathIndex(graph, patient, data, labels)
    out: list[Violation] = []
    for result in results:
        focus = result.focus
        if isinstance(focus, Literal):
            continue  # a literal where a mapping belongs: reported by the parent's sh:nodeKind shape
        value = result.value
        shape, source_constraint, component = result.shape, result.source_constraint, result.component
        message = result.message if result.message is not None else "does not conform to the patient document contract."
        text = _value_text(value)
        constraint = _shape_name(source_constraint) or _shape_name(component)
        if str(source_constraint) in _UNKNOWN_DRUG and text is not None:
            message += _did_you_mean(types.drugs.suggest(text))
        elif str(source_constraint) == _UNKNOWN_REGIMEN and text is not None:
            message += _did_you_mean(types.regimens.suggest(text))
        elif component == SH.InConstraintComponent and text is not None and shape is not None:
            message += _did_you_mean(_suggest_code(text, _shape_codes(shape)))  # type: ignore[arg-type]
        out.append(
            Violation(
                patient=doc.id,
                path=index.locate(focus, result.path, value),
                message=message,
                severity=_SEVERITIES.get(result.severity, VIOLATION),  # type: ignore[arg-type]
                shape=_shape_name(shape),
                constraint=constraint,
                value=text,
            )
        )
    out.sort(key=_result_order)
    return out


# ---------------------------------------------------------------------------------------------- API


@dataclass
class _Run:
    """What one validation call needs: the knowledge base's types, the engine, and the start time."""

    types: _KnowledgeTypes
    engine: str
    started: float
    shared: bool = True  # whether a converted document may take the shared runs (see _shared_results)


def _issue_to_violation(issue: Issue, patient: str | None) -> Violation:
    value = None if issue.value is None or isinstance(issue.value, (dict, list)) else str(issue.value)
    return Violation(patient, issue.path, issue.message, issue.severity, "precheck", issue.check, value)


def _covered(path: str, prefixes: list[str]) -> bool:
    return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in prefixes)


_TOP_ORDER = {
    key: i
    for i, key in enumerate(
        ["id", "assessmentDate", "age", "frailty", "ecog", "transplantEligible", "donorAvailable", "prefersOral",
         "cytogenetics", "neuropathyGrade", "neuropathyPainful", "heartFailureNYHA", "lvef",
         "uncontrolledHypertension", "cardiovascularRiskFactors", "vteHighRisk", "creatinineClearance",
         "extramedullaryDisease", "plasmaCellLeukemia", "relapse", "lines", "labs"]
    )
}


def _path_order(path: str) -> tuple[Any, ...]:
    parts: list[Any] = []
    for name, index in _TOKEN.findall(path):
        parts.append((0, int(index), "") if index else (1, _TOP_ORDER.get(name, 99), name))
    return tuple(parts)


def _finish(report: ValidationReport, results: list[Violation], run: _Run) -> ValidationReport:
    """Drop repeats and results already explained by a pre-check, then sort by document order."""
    seen: set[tuple[str, str, str]] = set()
    prechecked = [r.path for r in results if r.shape in ("precheck", "parse") and r.severity == VIOLATION]
    for r in results:
        key = (r.path, r.message, r.severity)
        if key in seen:
            continue
        if r.shape not in ("precheck", "parse") and _covered(r.path, prechecked):
            continue  # the pre-check already reported this field in plainer words
        seen.add(key)
        (report.violations if r.severity == VIOLATION else report.warnings).append(r)
    report.violations.sort(key=lambda v: (_path_order(v.path), v.message))
    report.warnings.sort(key=lambda v: (_path_order(v.path), v.message))
    report.seconds = time.perf_counter() - run.started
    return report


def _patient_id(data: Any) -> str | None:
    pid = data.get("id") if isinstance(data, dict) else None
    if isinstance(pid, bool) or not isinstance(pid, (str, int)) or not str(pid).strip():
        return None
    return str(pid)


def _validate_data(data: Any, run: _Run, *, source: str, position: int) -> ValidationReport:
    """Pre-check a JSON/YAML mapping, convert its pre-checked copy, run SHACL."""
    issues, cleaned = precheck(data)
    patient = _patient_id(data)
    report = ValidationReport(patient=patient, source=source, position=position)
    results = [_issue_to_violation(i, patient) for i in issues]
    if cleaned is None:
        return _finish(report, results, run)
    if patient is None:
        if not any(r.path == "id" for r in results):
            results.append(
                Violation(None, "id", "id is empty: give the patient a unique identifier, e.g. id: pt-017.",
                          VIOLATION, "precheck", "precheck", None)
            )
    converted = data if patient is not None else {**data, "id": f"document-{position}"}  # a stand-in id
    try:
        # the conversion makes the graph from the pre-checked copy itself (not from ``cleaned``: its ids and
        # codes are IRI-safe already, and would be encoded twice)
        doc = PatientDocument.from_dict(converted, source=source, position=position)
    except DataError as exc:
        results.append(Violation(patient, "", exc.message, VIOLATION, "parse", type(exc).__name__, None))
        return _finish(report, results, run)
    shacl = _located_results(doc, data, run)
    if patient is None:
        shacl = [replace(v, patient=None) for v in shacl]
    return _finish(report, results + shacl, run)


def _validate_document(doc: PatientDocument, run: _Run) -> ValidationReport:
    """A document already converted: reuse its graph when it came from a mapping the pre-checks accept."""
    if doc.data is None:
        report = ValidationReport(patient=doc.id, source=doc.source, position=doc.position)
        return _finish(report, _located_results(doc, None, run), run)
    if _precheck_issues(doc) or NODE_PATHS not in doc.extra:
        return _validate_data(doc.data, run, source=doc.source, position=doc.position)
    report = ValidationReport(patient=doc.id, source=doc.source, position=doc.position)
    return _finish(report, _located_results(doc, doc.data, run), run)


def _precheck_issues(doc: PatientDocument) -> Sequence[Issue]:
    """The pre-check issues of a document converted from a mapping (kept by the conversion, else computed)."""
    issues = doc.extra.get(PRECHECK_ISSUES)
    return issues if issues is not None else precheck(doc.data)[0]


def _located_results(doc: PatientDocument, data: dict[str, Any] | None, run: _Run) -> list[Violation]:
    """The SHACL results of a converted document, located in ``data`` (the document as written, if any).

    They come from the shared runs of :func:`validate_many` with the document alone (:func:`_shared_results`)
    when those can vouch for it, else from the engine's run over the document's graph (:func:`_shacl_results`);
    the two give the same results.
    """
    if run.shared:
        results = _shared_results(doc, data, run)
        if results is not None:
            return results
    return _shacl_results(doc, run.types, data, run.engine)


def _error_report(error: DataError, source: str | None, position: int | None, run: _Run) -> ValidationReport:
    report = ValidationReport(patient=error.patient, source=source, position=position, error=error)
    report.violations.append(
        Violation(error.patient, error.field or "", error.message, VIOLATION, "parse", type(error).__name__, None)
    )
    report.seconds = time.perf_counter() - run.started
    return report


def _start(kb_graph: Graph | None, engine: str | None) -> _Run:
    if engine is None:
        engine = default_engine()
    if engine not in ENGINES:
        raise ValueError(f"unknown validation engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "rudof" and not _rudof_available():
        raise ValueError("the rudof validation engine needs pyrudof (pip install pyrudof); or use engine='oxigraph'")
    return _Run(_knowledge_types(kb_graph), engine, time.perf_counter())


def validate(document: Any, *, kb_graph: Graph | None = None, engine: str | None = None) -> ValidationReport:
    """Validate one patient document against the patient shapes.

    :param document: a :class:`~myeloma_kg.patient.PatientDocument`, a mapping (the parsed JSON/YAML),
        a path to a file holding one patient, or an rdflib :class:`~rdflib.Graph` with one ``mkg:Patient``.
    :param kb_graph: the knowledge base whose drug and regimen ids are allowed; by default the packaged
        one (:func:`myeloma_kg.kb.load_kb_graph`).
    :param engine: ``"rudof"`` (pyrudof for the core constraints and pyoxigraph for the SHACL-SPARQL ones,
        a few milliseconds a patient; the default when pyrudof is installed), ``"oxigraph"`` (pySHACL over
        pyoxigraph; the default otherwise) or ``"rdflib"`` (pySHACL's plain mode, the reference). All three
        give the same report; the rudof engine hands a document it cannot vouch for to ``"oxigraph"``.
    :returns: the report; check ``report.conforms`` or call ``report.raise_for_violations()``.
    :raises ParseError: when a file cannot be parsed (malformed JSON, YAML or Turtle).
    :raises DataError: when the input holds no patient or several, or is of an unsupported type.

    >>> report = validate({"id": "pt-1", "assessmentDate": "2026-11-01", "lines": [
    ...     {"number": 1, "drugs": ["lenalidomid"], "start": "2020-01-01", "bestResponse": "PR"}]})
    >>> print(report.violations[0])  # doctest: +NORMALIZE_WHITESPACE
    pt-1 / lines[0].drugs[0] / 'lenalidomid' is not a drug id of the knowledge base: use a lower-case id
    from the drug catalogue, for example lenalidomide, bortezomib, daratumumab. Did you mean lenalidomide? / Violation
    """
    run = _start(kb_graph, engine)
    if isinstance(document, PatientDocument):
        return _validate_document(document, run)
    if isinstance(document, dict):
        return _validate_data(document, run, source="<input>", position=1)
    if isinstance(document, Graph):
        return _validate_document(PatientDocument.from_graph(document), run)
    if isinstance(document, (str, Path)):
        raws = list(read_documents(document))
        if len(raws) != 1:
            raise DataError(f"{document}: expected one patient document, found {len(raws)}; use validate_file()")
        if raws[0].error is not None:
            raise raws[0].error
        return validate_raw(raws[0], kb_graph=kb_graph, engine=engine)
    raise DataError(
        f"cannot validate a {type(document).__name__}: give a mapping, a path, a Graph or a PatientDocument"
    )


def _validate_alone(document: PatientDocument | dict[str, Any], *, kb_graph: Graph | None = None,
                    engine: str | None = None) -> ValidationReport:
    """:func:`validate` of a converted document or a mapping, always with the engine's own run over the
    document's graph (never the shared runs, see :func:`_shared_results`): the reference the tests compare
    :func:`validate` and :func:`validate_many` with."""
    run = replace(_start(kb_graph, engine), shared=False)
    if isinstance(document, PatientDocument):
        return _validate_document(document, run)
    return _validate_data(document, run, source="<input>", position=1)


def validate_raw(
    raw: RawDocument, *, kb_graph: Graph | None = None, engine: str | None = None
) -> ValidationReport:
    """Validate one document as read by :func:`myeloma_kg.io.read_documents`.

    A document that cannot be read or converted gives a report with ``error`` set (never an exception).
    """
    run = _start(kb_graph, engine)
    if raw.error is not None:
        return _error_report(raw.error, raw.source, raw.position, run)
    if raw.data is not None:
        return _validate_data(raw.data, run, source=raw.source, position=raw.position)
    try:
        doc = PatientDocument.from_raw(raw)
    except DataError as exc:
        return _error_report(exc, raw.source, raw.position, run)
    return _validate_document(doc, run)


def validate_file(
    path: str | Path, *, kb_graph: Graph | None = None, engine: str | None = None
) -> Iterator[ValidationReport]:
    """Validate every patient document of a file or directory (recursively), one report each.

    A file that cannot be parsed yields one report with ``error`` set (a :class:`ParseError` with file,
    line and column); the other files still run.

    :raises UsageError: when the path does not exist or has an unsupported suffix.
    """
    p = Path(path)
    if p.is_dir():
        from .io import JSON_SUFFIXES, JSONL_SUFFIXES, RDF_FORMATS, YAML_SUFFIXES

        suffixes = JSON_SUFFIXES | YAML_SUFFIXES | JSONL_SUFFIXES | set(RDF_FORMATS)
        for child in sorted(p.rglob("*")):
            if child.is_file() and child.suffix.lower() in suffixes:
                yield from validate_file(child, kb_graph=kb_graph, engine=engine)
        return
    try:
        raws = list(read_documents(p))
    except ParseError as exc:
        yield _error_report(exc, str(p), None, _start(kb_graph, engine))
        return
    for raw in raws:
        yield validate_raw(raw, kb_graph=kb_graph, engine=engine)


# ---------------------------------------------------------------------------------------------- batches
#
# validate_many() validates a batch of documents with one pyrudof run and one pyoxigraph store instead of one
# of each per document, and returns exactly the reports validate() returns one by one. Why the shared runs
# give each document the results a run of its own would give:
#
# * SHACL-SPARQL constraints: each document's triples go into a named graph of their own, with a copy of the
#   knowledge base's types, and each constraint's query is wrapped in GRAPH ?g { ... }. SPARQL evaluates the
#   wrapped pattern (FILTER [NOT] EXISTS and subqueries included) on each named graph alone, as validate()
#   evaluates it on a store holding one document; a solution's graph names its document.
# * Core constraints (pyrudof): the documents share one data graph. A core result depends on the focus node
#   and on the triples reachable from it along the shapes' paths, which are plain predicates (forward only;
#   checked when the queries are compiled, as is the absence of sh:targetNode). A document takes part only if
#   the subjects of its triples are its own patient IRI and its own blank nodes, no other document of the
#   batch mentions a node it owns or owns a node it mentions, and the knowledge base mentions none of its own
#   nodes: then every node has the same outgoing triples in the shared graph as in the document's own graph
#   plus the knowledge base, every focus node of a document's own run is a focus node of the shared run with
#   the same results, and the shared run has no other ones. A result goes to the one document that mentions
#   its focus node; a focus node that several documents mention sends them to validate(), one that only the
#   knowledge base (or nothing) mentions sends the whole batch there.
# * A document with results is located (paths, suggestions, ordering) by the code validate() runs, from its
#   own share of the results. Whatever the rudof engine would not vouch for (_Unsupported) sends the document,
#   or the batch, to validate(), which falls back to pySHACL and counts RUDOF_FALLBACKS as it always does.
#
# validate() of one converted document takes the same runs over a batch of that document alone
# (_shared_results): pyrudof as above, and the constraints' own queries over the default graph of this
# thread's long-lived store holding the knowledge base's types (_single_store), which is what the engine's own
# run (_run_rudof) evaluates them on, minus rebuilding the store and the document's rdflib graph. Whatever the
# shared runs cannot vouch for goes to the engine's own run over the document's graph (_shacl_results).

#: How :func:`validate_many` produced its reports: ``batched`` from the shared run (``batched_findings`` of
#: them with violations or warnings), ``single`` by :func:`validate` one document at a time.
VALIDATE_MANY_STATS: Counter[str] = Counter()

_BATCH_SIZE = 200  # documents per shared run (the cost is linear; this bounds memory)
_BATCH_GRAPH = "https://w3id.org/myeloma-kg/validate#batch-"
_GRAPH_VAR = "mkgValidateGraph"
_XSD_STRING = str(XSD.string)
_SELECT = re.compile(r"\bSELECT\s+(?:(?:DISTINCT|REDUCED)\s+)?", re.IGNORECASE)
_PROJECTION = re.compile(r"(?:\s*[?$][A-Za-z_][A-Za-z0-9_]*)+\s*")
_DATASET_WORDS = re.compile(r"\b(?:GRAPH|FROM|NAMED|SERVICE)\b", re.IGNORECASE)
_STRING = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'""")
_batch_lock = threading.Lock()


def _graph_query(query: str) -> str:
    """A constraint's query evaluated in every named graph alone, projecting the graph as ``?mkgValidateGraph``.

    >>> print(_graph_query("SELECT DISTINCT $this ?value WHERE { $this <p> ?value . FILTER (?value != '}') }"))
    SELECT DISTINCT ?mkgValidateGraph $this ?value WHERE { GRAPH ?mkgValidateGraph { $this <p> ?value . FILTER (?value != '}') } }
    """
    if "\n" in query or '"' * 3 in query or "'" * 3 in query or _GRAPH_VAR in query:
        raise _Unsupported("query with comments, long strings or the graph variable")
    code = _STRING.sub(lambda m: m.group()[0] + "_" * (len(m.group()) - 2) + m.group()[-1], query)
    select = _SELECT.search(code)
    where = _WHERE.search(code, select.end()) if select is not None else None
    if select is None or where is None or _DATASET_WORDS.search(code):
        raise _Unsupported("query outside the batchable form")
    if not _PROJECTION.fullmatch(code[select.end(): where.start()]):
        raise _Unsupported("query projecting expressions")
    depth, close = 0, None
    for i in range(where.end() - 1, len(code)):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                close = i
                break
    if close is None or code[close + 1:].strip():
        raise _Unsupported("query with solution modifiers")
    return (
        f"{query[: select.end()]}?{_GRAPH_VAR} {query[select.end(): where.end()]} "
        f"GRAPH ?{_GRAPH_VAR} {{ {query[where.end(): close].strip()} }} }}"
    )


@cache
def _cached_batch_plan() -> tuple[_RudofPlan, tuple[str, ...]] | str:
    try:
        plan = _rudof_plan()
        graph = shapes_graph()
        if any(not isinstance(path, URIRef) for path in graph.objects(None, SH.path)):
            raise _Unsupported("a property path other than a predicate")
        if (None, SH.targetNode, None) in graph:
            raise _Unsupported("sh:targetNode")
        queries = tuple(_graph_query(check.query) for check in plan.sparql)
        import pyoxigraph as ox

        probe = ox.Store()
        for check, query in zip(plan.sparql, queries):
            try:
                list(probe.query(query, prefixes=check.prefixes))
            except Exception as exc:  # whatever Oxigraph makes of it, the batch cannot use it
                raise _Unsupported(f"Oxigraph rejects the batch form of a query: {exc}") from exc
        return plan, queries
    except _Unsupported as exc:
        return str(exc)


def _batch_plan() -> tuple[_RudofPlan, tuple[str, ...]]:
    """The rudof plan with each SPARQL constraint's query in its per-graph form (or _Unsupported)."""
    plan = _cached_batch_plan()
    if isinstance(plan, str):
        raise _Unsupported(plan)
    return plan


def _primary_quads(doc: PatientDocument) -> list[Any] | None:
    """The document's pyoxigraph quads when its rdflib graph is not built yet (and would be built from them).

    validate() reads ``doc.graph``. A document converted by pyoxigraph builds that graph from its quads term
    by term on first use, so until then the quads can stand in for it (without building it). Once the graph
    exists, or when the document was read as RDF, the graph itself is used: rdflib keeps some ill-formed
    literals (``"yes"^^xsd:boolean``) in a form that quads made from the graph would lose.
    """
    quads = doc.unconverted_quads if isinstance(doc, PatientDocument) else None
    return quads if isinstance(quads, list) else None


def _doc_ox_quads(doc: PatientDocument, graph_name: Any = None) -> list[Any]:
    """The document's triples as validate() puts them into its pyoxigraph store (in ``graph_name``; by
    default in the default graph).

    That store holds the rdflib graph's terms converted back (:func:`_to_ox`): a typed literal carries
    rdflib's normal form of its lexical value (``"007"^^xsd:integer`` becomes ``"7"``).

    :raises ValueError: for a term pyoxigraph rejects.
    """
    import pyoxigraph as ox

    quads = _primary_quads(doc)
    if quads is None:  # validate() converts the graph's terms as they are
        quads = _ox_patient_quads(doc.graph)
        return quads if graph_name is None else [ox.Quad(q.subject, q.predicate, q.object, graph_name) for q in quads]
    literal, quad = ox.Literal, ox.Quad
    out = []
    for q in quads:
        o = q.object
        if type(o) is literal:
            form = _literal_forms(o)[1]
            if graph_name is None and form == o:
                out.append(q)  # the quad as it is (making a new one costs more than the comparison)
                continue
            o = form
        elif graph_name is None:
            out.append(q)
            continue
        out.append(quad(q.subject, q.predicate, o) if graph_name is None else quad(q.subject, q.predicate, o, graph_name))
    return out


_literal_cache: dict[Any, tuple[str | None, Any, str]] = {}
_XSD_DATE = str(XSD.date)
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _plain_date(text: str) -> bool:
    """Whether ``text`` is a real calendar date written YYYY-MM-DD (year 1 or later, no time zone): the
    lexical forms rdflib reads as a well-formed xsd:date whose normal form is the text itself.

    >>> [_plain_date(t) for t in ("2021-02-28", "2021-02-29", "0000-01-01", "2021-2-3", "2021-02-28Z")]
    [True, False, False, False, False]
    """
    if _PLAIN_DATE.fullmatch(text) is None:
        return False
    try:
        return dt.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _literal_forms(term: Any) -> tuple[str | None, Any, str]:
    """A pyoxigraph literal as validate() sees it once it has been through rdflib (``doc.graph``): its
    N-Triples for pyrudof (:func:`_nt_term`; None when that raises _Unsupported, for the reason given third)
    and its pyoxigraph form in validate()'s store (:func:`_to_ox`).

    Strings and language-tagged strings are unchanged; numbers, dates and booleans take rdflib's reading
    (normal form, or the ill-formed mark). Both forms depend on the literal alone, and the same dates and
    numbers recur across a cohort, so each is computed once.
    """
    hit = _literal_cache.get(term)
    if hit is None:
        language, datatype = term.language, term.datatype.value
        if language is not None or datatype == _XSD_STRING:
            text = term.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
            hit = (f'"{text}"@{language}' if language else f'"{text}"', term, "")
        elif datatype == _XSD_DATE and _plain_date(term.value):
            # Most literals of a cohort are distinct calendar dates: rdflib reads such a date as written
            # (its normal form is the text itself), so both forms are known without building the rdflib term.
            hit = (f'"{term.value}"^^<{_XSD_DATE}>', term, "")
        else:
            rdf = _to_rdf(term)
            try:
                hit = (_nt_term(rdf), _to_ox(rdf), "")
            except _Unsupported as exc:
                hit = (None, _to_ox(rdf), str(exc))
        if len(_literal_cache) > 100_000:
            _literal_cache.clear()
        _literal_cache[term] = hit
    return hit


def _ox_nt_term(term: Any) -> str:
    """A pyoxigraph term in N-Triples exactly as :func:`_nt_term` writes the rdflib term the graph would hold."""
    import pyoxigraph as ox

    kind = type(term)
    if kind is ox.NamedNode or kind is ox.BlankNode:
        return str(term)  # <iri> and _:label, as _nt_term writes them
    if kind is not ox.Literal:
        raise _Unsupported("an RDF-star term")
    text, _, why = _literal_forms(term)
    if text is None:
        raise _Unsupported(why)
    return text


def _doc_ntriples(doc: PatientDocument) -> str:
    """The document's triples in N-Triples for pyrudof, as :func:`_ntriples` writes ``doc.graph``.

    :raises _Unsupported: for a number pyrudof cannot compare exactly (see :func:`_nt_term`).
    """
    quads = _primary_quads(doc)
    if quads is None:
        return _ntriples(doc.graph)
    return "".join(f"{q.subject} {q.predicate} {_ox_nt_term(q.object)} .\n" for q in quads)


class _TripleView:
    """A read-only stand-in for the rdflib graph of a document whose graph is not built yet.

    It holds the triples :attr:`PatientDocument.graph <myeloma_kg.patient.PatientDocument.graph>` would hold
    (the same rdflib terms, in the same order) and answers the look-ups the result mapping makes
    (:class:`_PathIndex`, :func:`_rudof_entries`) as rdflib's in-memory store does, with subject-bound
    look-ups in insertion order; without that store's bookkeeping it is built many times faster.
    """

    def __init__(self, triples: Iterator[tuple[Any, Any, Any]]) -> None:
        self._spo: dict[Any, dict[Any, dict[Any, None]]] = {}
        for s, p, o in triples:
            self._spo.setdefault(s, {}).setdefault(p, {})[o] = None

    def __iter__(self) -> Iterator[tuple[Any, Any, Any]]:
        for s, po in self._spo.items():
            for p, objects in po.items():
                for o in objects:
                    yield s, p, o

    def __len__(self) -> int:
        return sum(len(objects) for po in self._spo.values() for objects in po.values())

    def __contains__(self, triple: tuple[Any, Any, Any]) -> bool:
        s, p, o = triple
        subjects = [s] if s is not None else list(self._spo)
        for subject in subjects:
            po = self._spo.get(subject, {})
            for predicate in [p] if p is not None else list(po):
                objects = po.get(predicate, {})
                if (o in objects) if o is not None else bool(objects):
                    return True
        return False

    def predicate_objects(self, subject: Any) -> Iterator[tuple[Any, Any]]:
        for p, objects in list(self._spo.get(subject, {}).items()):
            for o in list(objects):
                yield p, o

    def objects(self, subject: Any, predicate: Any) -> Iterator[Any]:
        return iter(list(self._spo.get(subject, {}).get(predicate, {})))

    def value(self, subject: Any, predicate: Any) -> Any:
        for o in self._spo.get(subject, {}).get(predicate, {}):
            return o
        return None


_rdf_term_cache: dict[Any, Any] = {}


def _doc_graph(doc: PatientDocument) -> Any:
    """The document's graph as validate() reads it: ``doc.graph`` once it exists; before that, a
    :class:`_TripleView` of the triples it would be built from (so that validate_many() does not build it)."""
    quads = _primary_quads(doc)
    convert = rdflib_term  # how PatientDocument.graph converts each term
    if quads is None:
        return doc.graph
    import pyoxigraph as ox

    cache_ = _rdf_term_cache
    if len(cache_) > 100_000:
        cache_.clear()
    blank = ox.BlankNode
    local: dict[Any, Any] = {}  # blank nodes: their labels are the document's own and never recur elsewhere

    def term(t: Any) -> Any:
        memo = local if type(t) is blank else cache_
        hit = memo.get(t)
        if hit is None:
            hit = memo[t] = convert(t)
        return hit

    return _TripleView((term(q.subject), term(q.predicate), term(q.object)) for q in quads)


@dataclass
class _BatchDoc:
    """A document of a batch, converted for the shared runs."""

    index: int  # its position in the documents given to validate_many()
    doc: PatientDocument
    data: dict[str, Any] | None
    ntriples: str
    nodes: set[str]  # the IRIs and blank nodes its triples mention (as pyrudof names focus nodes)
    own: set[str]  # its patient IRI and its blank nodes
    predicates: set[str]
    graph_quads: list[Any] | None = None  # for a document read from its rdflib graph: validate()'s quads
    # for a document converted to quads: each triple as validate()'s store holds it, in N-Triples without
    # the final " ." (a graph name and " .\n" make N-Quads of them)
    store_lines: list[str] | None = None


def _batch_doc(index: int, doc: Any) -> _BatchDoc | None:
    """The document ready for the shared runs, or None when it must go through validate() alone.

    It must be a converted document that validate() checks from its own graph (not one re-converted from its
    data after pre-check issues) whose triples all have its patient IRI or one of its blank nodes as subject.
    """
    if not isinstance(doc, PatientDocument):
        return None
    data = doc.data
    if data is not None and (_precheck_issues(doc) or NODE_PATHS not in doc.extra):
        return None
    return _doc_item(index, doc, data, for_store=True)


def _doc_item(index: int, doc: PatientDocument, data: dict[str, Any] | None, *,
              for_store: bool = False) -> _BatchDoc | None:
    """A converted document ready for the shared runs, its results to be located in ``data``; None when its
    triples do not all have its patient IRI or one of its blank nodes as subject (or cannot be written for
    pyrudof): validate() takes it alone. ``for_store``: also write :attr:`_BatchDoc.store_lines` (for the
    shared SPARQL store of a batch; one document alone uses its quads as they are)."""
    import pyoxigraph as ox

    iri = doc.iri
    nodes: set[str] = set()
    own: set[str] = {iri}
    predicates: set[str] = set()
    quads = _primary_quads(doc)
    if quads is None:  # the rdflib graph, read once: the same nodes, spelled as pyrudof names focus nodes
        triples = list(doc.graph)
        try:
            ntriples = _ntriples(triples)  # type: ignore[arg-type]
            graph_quads = _ox_patient_quads(triples)  # type: ignore[arg-type]
        except (_Unsupported, ValueError):
            return None
        for s, p, o in triples:
            if isinstance(s, BNode):
                own.add(f"_:{s}")
                nodes.add(f"_:{s}")
            elif isinstance(s, URIRef) and str(s) == iri:
                nodes.add(iri)
            else:
                return None  # a triple about another node (a drug, a line with an IRI ...)
            if isinstance(o, BNode):
                own.add(f"_:{o}")
                nodes.add(f"_:{o}")
            elif isinstance(o, URIRef):
                nodes.add(str(o))
            elif not isinstance(o, Literal):
                return None
            predicates.add(str(p))
        return _BatchDoc(index, doc, data, ntriples, nodes, own, predicates, graph_quads)
    # One pass over the quads: the nodes and predicates, and the N-Triples of _doc_ntriples() (spelled out
    # here, with the same terms, to read each quad once).
    named, blank, literal = ox.NamedNode, ox.BlankNode, ox.Literal
    forms = _literal_forms
    lines: list[str] = []
    store_lines: list[str] | None = [] if for_store else None
    for q in quads:
        subject, obj = q.subject, q.object
        kind = type(subject)
        if kind is blank:
            key = "_:" + subject.value
            own.add(key)
        elif kind is named and subject.value == iri:
            key = iri
        else:
            return None  # a triple about another node (a drug, a line with an IRI ...)
        nodes.add(key)
        kind = type(obj)
        if kind is named:
            nodes.add(obj.value)
            text = stored = str(obj)
        elif kind is blank:
            key = "_:" + obj.value
            nodes.add(key)
            own.add(key)
            text = stored = key
        elif kind is literal:
            form = forms(obj)
            text = form[0]  # type: ignore[assignment]
            if text is None:
                return None  # a number pyrudof cannot compare exactly: validate() decides
            stored = str(form[1])
        else:
            return None
        predicate = q.predicate
        predicates.add(predicate.value)
        head = f"{subject} {predicate} "
        lines.append(f"{head}{text} .\n")
        if store_lines is not None:
            store_lines.append(head + stored)
    return _BatchDoc(index, doc, data, "".join(lines), nodes, own, predicates, store_lines=store_lines)


def _kb_nodes(types: _KnowledgeTypes) -> frozenset[str]:
    """The nodes of the knowledge base's type graph, as pyrudof names focus nodes."""
    nodes = types.batch.get("nodes")
    if nodes is None:
        names: set[str] = set()
        for triple in types.graph:
            for term in (triple[0], triple[2]):
                if isinstance(term, URIRef):
                    names.add(str(term))
                elif isinstance(term, BNode):
                    names.add(f"_:{term}")
        nodes = types.batch["nodes"] = frozenset(names)
    return nodes  # type: ignore[no-any-return]


_STORE_RENEWAL = 20  # batches a validation store serves before it is rebuilt (about 10 ms)
_store_uses: dict[int, int] = {}


def _batch_store(types: _KnowledgeTypes, slots: int, expected: int) -> tuple[Any, list[Any]]:
    """A pyoxigraph store of this thread for batches of ``slots`` documents, and its named graphs' names.

    Each named graph holds a copy of the knowledge base's type quads; a batch adds its documents' quads to
    them and removes them afterwards (see :func:`_run_batch`), so that the copies are made once. A query
    also scans the copies of graphs no document uses, so a store has at most about twice the graphs a batch
    needs: batches of a cohort run (``expected`` documents, a few of them validated alone) share one store.
    """
    import pyoxigraph as ox

    stores: dict[Any, tuple[_KnowledgeTypes, list[tuple[Any, list[Any]]]]] = getattr(_local, "batch_stores", None) or {}
    _local.batch_stores = stores
    key = (os.getpid(), id(types))
    entry = stores.get(key)
    if entry is None or entry[0] is not types:
        if len(stores) > 4:
            stores.clear()
        entry = stores[key] = (types, [])
    limit = 2 * slots + 4
    fitting = [(len(names), store, names) for store, names in entry[1] if slots <= len(names) <= limit]
    if fitting:
        _, store, names = min(fitting, key=lambda f: f[0])
        uses = _store_uses[id(store)] = _store_uses.get(id(store), 0) + 1
        if uses <= _STORE_RENEWAL:
            return store, names[:slots]
        # pyoxigraph keeps removed quads until the store is dropped: a store used for many batches
        # grows and slows down (measured: +40 % per 4,000 patients), so it is renewed now and then.
        _drop_batch_store(types, store)
        _store_uses.pop(id(store), None)
    size = expected if slots <= expected <= limit else slots
    with _batch_lock:  # the quads of each graph are made once per knowledge base, for every thread
        graphs: list[list[Any]] = types.batch.setdefault("graphs", [])
        kb = _ox_quads(types)
        while len(graphs) < size:
            name = ox.NamedNode(f"{_BATCH_GRAPH}{len(graphs)}")
            graphs.append([ox.Quad(q.subject, q.predicate, q.object, name) for q in kb])
        graphs = graphs[:size]
    store = ox.Store()
    store.extend([q for graph in graphs for q in graph])
    names = [ox.NamedNode(f"{_BATCH_GRAPH}{i}") for i in range(size)]
    if len(entry[1]) >= 3:
        entry[1].pop(0)
    entry[1].append((store, names))
    return store, names[:slots]


def _drop_batch_store(types: _KnowledgeTypes, store: Any) -> None:
    entry = getattr(_local, "batch_stores", {}).get((os.getpid(), id(types)))
    if entry is not None:
        entry[1][:] = [(s, names) for s, names in entry[1] if s is not store]


_Solutions = list[tuple[_SparqlCheck, dict[str, Any]]]  # a document's SHACL-SPARQL solutions (variable -> term)


def _shared_sparql(
    items: list[_BatchDoc], batch: list[int], plan: _RudofPlan, queries: tuple[str, ...], types: _KnowledgeTypes,
    alone: set[int],
) -> dict[int, _Solutions]:
    """The SHACL-SPARQL solutions of the documents ``batch`` (positions in ``items``), by document: one store
    with a named graph per document, each constraint's query in its per-graph form run once.

    A document whose terms Oxigraph rejects is added to ``alone``.

    :raises _Unsupported: when a solution cannot be given to one document, or Oxigraph rejects the batch.
    """
    import pyoxigraph as ox

    store, graph_names = _batch_store(types, len(batch), len(items))
    quads: list[Any] = []
    slot_of: dict[str, int] = {}
    present = set(_type_predicates(types))
    for name, k in zip(graph_names, batch):
        slot_of[name.value] = k
        present |= items[k].predicates
    solutions_of: dict[int, _Solutions] = {}
    try:
        texts: list[str] = []
        for name, k in zip(graph_names, batch):
            graph_quads, store_lines = items[k].graph_quads, items[k].store_lines
            if graph_quads is not None:
                quads.extend(ox.Quad(q.subject, q.predicate, q.object, name) for q in graph_quads)
            elif store_lines is not None:
                if store_lines:
                    end = f" {name} .\n"
                    texts.append(end.join(store_lines) + end)
            else:
                try:
                    quads.extend(_doc_ox_quads(items[k].doc, name))
                except ValueError:  # a term Oxigraph rejects: validate() decides
                    alone.add(k)
        if texts:
            # Quads made by pyoxigraph's parser: ox.Quad() costs 3-5 us for a blank node or a literal.
            try:
                quads.extend(ox.parse("".join(texts), format=ox.RdfFormat.N_QUADS, lenient=True))
            except SyntaxError as exc:
                raise _Unsupported("Oxigraph could not read the batch") from exc
        store.extend(quads)
        for check, query in zip(plan.sparql, queries):
            if not _triggered(check, present):
                continue
            solutions = store.query(query, prefixes=check.prefixes)
            names = [v.value for v in solutions.variables]
            for solution in solutions:
                bound = {n: v for n, v in zip(names, solution) if v is not None}
                graph = bound.pop(_GRAPH_VAR, None)
                k = slot_of.get(graph.value) if isinstance(graph, ox.NamedNode) else None
                if k is None:
                    raise _Unsupported("a SPARQL solution outside the documents' graphs")
                solutions_of.setdefault(k, []).append((check, {n: _to_rdf(v) for n, v in bound.items()}))
    except ValueError as exc:  # a term Oxigraph rejects
        raise _Unsupported("Oxigraph could not read the batch") from exc
    finally:
        # back to the knowledge base's types alone (no document shares a triple with them)
        _remove_or_drop(store, quads, lambda: _drop_batch_store(types, store))
    return solutions_of


_SINGLE_STORE_RENEWAL = 100  # documents a single-document store serves before it is rebuilt (about 0.3 ms)


def _single_store(types: _KnowledgeTypes) -> Any:
    """This thread's pyoxigraph store for one document at a time: the knowledge base's type quads in the
    default graph, as in the engine's own run (:func:`_rudof_sparql`), to which a document's quads are added
    and from which they are removed again.

    Reusing it saves building a store and copying the type quads for every document; as for the batch stores,
    removed quads stay in the store until it is dropped, so it is renewed after a number of documents.
    """
    import pyoxigraph as ox

    stores: dict[Any, list[Any]] = getattr(_local, "single_stores", None) or {}
    _local.single_stores = stores
    key = (os.getpid(), id(types))
    entry = stores.get(key)
    if entry is None or entry[0] is not types or entry[2] >= _SINGLE_STORE_RENEWAL:
        if entry is None and len(stores) > 4:
            stores.clear()
        store = ox.Store()
        store.extend(_ox_quads(types))
        entry = stores[key] = [types, store, 0]
    entry[2] += 1
    return entry[1]


def _single_sparql(
    item: _BatchDoc, k: int, plan: _RudofPlan, types: _KnowledgeTypes, alone: set[int]
) -> dict[int, _Solutions]:
    """The SHACL-SPARQL solutions of one document (at position ``k``), as :func:`_shared_sparql` gives them.

    With one document there is nothing to keep apart: its quads go into the default graph of a store holding
    the knowledge base's types and the constraints' own queries run on it, exactly as in the engine's own run
    (:func:`_rudof_sparql`), without the store being built anew.

    :raises _Unsupported: when Oxigraph rejects the document.
    """
    store = _single_store(types)
    try:
        quads = item.graph_quads if item.graph_quads is not None else _doc_ox_quads(item.doc)
    except ValueError:  # a term Oxigraph rejects: validate() decides
        alone.add(k)
        return {}
    present = _type_predicates(types) | item.predicates
    found: _Solutions = []
    try:
        store.extend(quads)
        for check in plan.sparql:
            if not _triggered(check, present):
                continue
            solutions = store.query(check.query, prefixes=check.prefixes)
            names = [v.value for v in solutions.variables]
            for solution in solutions:
                found.append((check, {n: _to_rdf(v) for n, v in zip(names, solution) if v is not None}))
    except ValueError as exc:  # a term Oxigraph rejects
        raise _Unsupported("Oxigraph could not read the document") from exc
    finally:
        # back to the knowledge base's types alone (the document shares no triple with them)
        _remove_or_drop(store, quads, lambda: setattr(_local, "single_stores", {}))
    return {k: found} if found else {}


def _remove_or_drop(store: Any, quads: list[Any], drop: Callable[[], None]) -> None:
    """Remove a run's quads from a kept validation store; if that fails, ``drop`` the store (it would
    otherwise keep a document's triples for the next run) and re-raise."""
    try:
        for quad in quads:
            store.remove(quad)
    except BaseException:
        drop()
        raise


def _triggered(check: _SparqlCheck, present: frozenset[str] | set[str]) -> bool:
    """Whether a constraint can have a focus node among data using the ``present`` predicates (a check
    without known triggers always runs)."""
    return check.triggers is None or any(str(t) in present for t in check.triggers)


def _type_predicates(types: _KnowledgeTypes) -> frozenset[str]:
    """The predicates of the knowledge base's type graph, as strings (made once per knowledge base)."""
    names = types.batch.get("predicates")
    if names is None:
        names = types.batch["predicates"] = frozenset(str(p) for p in types.predicates)
    return names  # type: ignore[no-any-return]


@dataclass
class _SharedRuns:
    """What the shared runs found over a batch: pyrudof's entries and the SPARQL solutions, by document."""

    batch: list[int]  # the positions (in the items) of the documents the runs took
    core: dict[int, list[Any]]
    solutions: dict[int, _Solutions]
    alone: set[int]  # the positions of the documents validate() must take alone
    plan: _RudofPlan


def _shared_runs(items: list[_BatchDoc], run: _Run) -> _SharedRuns:
    """One pyrudof run and one pass of the SHACL-SPARQL queries over ``items``, results shared out by document.

    :raises _Unsupported: when the shared runs cannot vouch for the batch (all of it goes to validate()).
    """
    plan, queries = _batch_plan()
    types = run.types
    kb_nodes = _kb_nodes(types)
    alone: set[int] = set()

    # Documents that share a node one of them owns (its patient IRI or a blank node), or that own a node of
    # the knowledge base, would see each other's triples: validate() takes them alone.
    touching: dict[str, list[int]] = {}
    for k, item in enumerate(items):
        for node in item.nodes | item.own:
            touching.setdefault(node, []).append(k)
    for k, item in enumerate(items):
        for node in item.own:
            if len(touching[node]) > 1 or node in kb_nodes:
                alone.update(touching[node])
    batch = [k for k in range(len(items)) if k not in alone]
    if not batch:
        return _SharedRuns(batch, {}, {}, alone, plan)
    owners: dict[str, list[int]] = {}
    for k in batch:
        for node in items[k].nodes:
            owners.setdefault(node, []).append(k)

    # Core constraints: one pyrudof run over all the documents.
    session = _rudof_session(plan, types, len(batch))
    try:
        entries = session.validate("".join(items[k].ntriples for k in batch))
    except session.pyrudof.RudofError as exc:
        raise _Unsupported("pyrudof could not read the batch") from exc
    core: dict[int, list[Any]] = {}
    for entry in entries:
        focus = entry.focus_node
        if focus in kb_nodes:
            raise _Unsupported("a result about a node of the knowledge base")
        holders = owners.get(focus)
        if holders is None:
            if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|_:", focus):
                raise _Unsupported("a result about a node outside the documents")
            continue  # a literal focus node: validate() drops its results too
        if len(holders) == 1:
            core.setdefault(holders[0], []).append(entry)
        else:
            alone.update(holders)

    # SHACL-SPARQL constraints: each query run once, over one store for all the documents.
    if len(batch) == 1:
        solutions = _single_sparql(items[batch[0]], batch[0], plan, types, alone)
    else:
        solutions = _shared_sparql(items, batch, plan, queries, types, alone)
    return _SharedRuns(batch, core, solutions, alone, plan)


def _shared_located(item: _BatchDoc, runs: _SharedRuns, k: int, run: _Run) -> list[Violation]:
    """The shared runs' results for the document at position ``k``, located by validate()'s own code.

    :raises _Unsupported: when a result cannot be placed with certainty (validate() then decides).
    """
    core, solutions = runs.core.get(k), runs.solutions.get(k)
    if not core and not solutions:
        return []
    graph = _doc_graph(item.doc)
    raw = _rudof_entries(core or [], graph, runs.plan)
    raw += [_sparql_result(check, bound) for check, bound in solutions or []]
    return _shacl_results(item.doc, run.types, item.data, run.engine, raw, graph)


def _run_batch(items: list[_BatchDoc], run: _Run) -> tuple[dict[int, ValidationReport], set[int]]:
    """The shared runs over ``items``: the reports they settle (by position in ``items``), and the positions
    of the documents validate() must take alone.

    :raises _Unsupported: when the shared runs cannot vouch for the batch (all of it goes to validate()).
    """
    runs = _shared_runs(items, run)
    alone = runs.alone
    # Each document: no result gives an empty report; results are located by validate()'s own code.
    reports: dict[int, ValidationReport] = {}
    for k in runs.batch:
        if k in alone:
            continue
        doc = items[k].doc
        report = ValidationReport(patient=doc.id, source=doc.source, position=doc.position)
        if k in runs.core or k in runs.solutions:
            try:
                results = _shared_located(items[k], runs, k, run)
            except _Unsupported:
                alone.add(k)  # validate() decides (and counts its fallback)
                continue
            _finish(report, results, run)
        reports[k] = report
    return reports, alone


def _shared_results(doc: PatientDocument, data: dict[str, Any] | None, run: _Run) -> list[Violation] | None:
    """The SHACL results of one converted document (located in ``data``) from the shared runs of
    :func:`validate_many` over a batch of this document alone; None when they cannot vouch for it, and the
    engine's own run (:func:`_shacl_results`) must decide.

    A batch of one gives exactly the results of the engine's own run (see the comment above
    :data:`VALIDATE_MANY_STATS`), while skipping what makes that run slow: building ``doc.graph`` term by term,
    a new pyoxigraph store with the knowledge base's types for every document, and N-Triples written from
    rdflib terms. The store (:func:`_single_store`) and the pyrudof session are this thread's long-lived ones,
    renewed after a number of documents so that memory stays flat over long runs. Nothing is counted in
    :data:`VALIDATE_MANY_STATS` (validate_many()'s account); :data:`RUDOF_FALLBACKS` moves only in the engine's
    own run, when that falls back.
    """
    if run.engine != "rudof":
        return None
    item = _doc_item(0, doc, data)
    if item is None:
        return None
    try:
        runs = _shared_runs([item], run)
        if 0 in runs.alone:
            return None
        return _shared_located(item, runs, 0, run)
    except _Unsupported:
        return None


def validate_many(
    documents: Sequence[PatientDocument], *, kb_graph: Graph | None = None, engine: str | None = None
) -> list[ValidationReport]:
    """Validate many converted patient documents: ``[validate(d) for d in documents]``, several times faster.

    The reports are exactly those of :func:`validate` (same violations, warnings, messages, paths and order);
    only ``seconds`` differs (each document's share of its batch). With the ``rudof`` engine the documents
    are validated together, with one pyrudof run and one pyoxigraph store per batch (see the comment above
    :data:`VALIDATE_MANY_STATS`). Documents the shared runs cannot vouch for go through :func:`validate`
    alone: documents with pre-check issues, with triples about nodes other than the patient's own, sharing a
    patient IRI or a blank node with another document of the batch, holding numbers pyrudof cannot compare
    exactly ...; and every document under the other engines.

    :param documents: :class:`~myeloma_kg.patient.PatientDocument` objects (anything else :func:`validate`
        accepts is validated alone).
    :param kb_graph: as for :func:`validate`.
    :param engine: as for :func:`validate`.
    :returns: one report per document, in order.

    >>> from myeloma_kg.patient import load_patient
    >>> [r.conforms for r in validate_many([load_patient(EXAMPLES_DIR / "pt-017.yaml")])]
    [True]
    """
    docs = list(documents)
    if not docs:
        return []
    run = _start(kb_graph, engine)
    reports: list[ValidationReport | None] = [None] * len(docs)
    if run.engine == "rudof":
        items = [item for i, doc in enumerate(docs) if (item := _batch_doc(i, doc)) is not None]
        for start in range(0, len(items), _BATCH_SIZE):
            chunk = items[start: start + _BATCH_SIZE]
            started = time.perf_counter()
            try:
                done, _ = _run_batch(chunk, run)
            except _Unsupported:
                continue  # every document of the chunk goes to validate()
            share = (time.perf_counter() - started) / max(len(done), 1)
            for k, report in done.items():
                report.seconds = share
                reports[chunk[k].index] = report
                VALIDATE_MANY_STATS["batched"] += 1
                if report.violations or report.warnings:
                    VALIDATE_MANY_STATS["batched_findings"] += 1
    out: list[ValidationReport] = []
    for doc, report in zip(docs, reports):
        if report is None:
            VALIDATE_MANY_STATS["single"] += 1
            report = validate(doc, kb_graph=kb_graph, engine=engine)
        out.append(report)
    return out
