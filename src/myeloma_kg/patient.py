"""Patient documents: the JSON/YAML contract turned into RDF through the shipped JSON-LD context.

The document keys (``id``, ``assessmentDate``, ``lines`` ...) are the public contract; the JSON-LD
context in ``myeloma_kg/context/patient.context.jsonld`` maps each key to an ontology term, so the
same document is RDF without a hand-written mapping. This module only adds what JSON-LD cannot
say: the ``@context`` itself, the ``Patient`` type, and an IRI-safe form of the patient id.

>>> doc = PatientDocument.from_dict({"id": "pt-1", "assessmentDate": "2026-01-01", "lines": []})
>>> doc.iri
'https://w3id.org/myeloma-kg/patient/pt-1'
>>> len(doc.graph) > 0
True
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF

from .errors import DataError, FieldTypeError, MyelomaKGError, ParseError
from .io import RawDocument, _jsonable, read_documents
from .namespaces import MKG, PATIENT
from .precheck import Issue, precheck
from .resources import context_path


class _IllTypedLiteralFilter(logging.Filter):
    """Drop rdflib's warning (with a traceback) about literals such as ``"2021-13-40"^^xsd:date``.

    Such a literal is kept as written and reported by validation with its field path; the log line would
    only show a traceback to the user.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to convert Literal lexical form")


logging.getLogger("rdflib.term").addFilter(_IllTypedLiteralFilter())

#: ``PatientDocument.extra`` key of the map from blank-node label to document field path.
NODE_PATHS = "node_paths"
#: ``PatientDocument.extra`` key: the pre-check issues of the document as written (a tuple), when it was a mapping
PRECHECK_ISSUES = "precheck_issues"


@cache
def patient_context() -> dict[str, Any]:
    """The JSON-LD context object (the value of ``@context``) for patient documents."""
    with open(context_path(), encoding="utf-8") as fh:
        return json.load(fh)["@context"]


def patient_iri(patient_id: str) -> str:
    """The IRI of a patient: the id percent-encoded under the patient namespace.

    >>> patient_iri("pt 17/\\"x")
    'https://w3id.org/myeloma-kg/patient/pt%2017%2F%22x'
    """
    return str(PATIENT) + quote(patient_id, safe="-._~")


class PatientDocument:
    """One patient: the document as given, its RDF (as pyoxigraph quads and/or an rdflib graph), and where it came from.

    Documents converted from JSON/YAML keep their triples as pyoxigraph quads (what the reasoner and the
    validator consume); the rdflib :attr:`graph` is built from them on first use, and the other way round
    for documents read as RDF.
    """

    __slots__ = ("id", "data", "source", "position", "extra", "_graph", "_quads")

    def __init__(self, id: str, graph: Graph | None = None, data: dict[str, Any] | None = None,
                 source: str = "<input>", position: int = 1, extra: dict[str, Any] | None = None, *,
                 quads: list[ox.Quad] | None = None) -> None:
        if graph is None and quads is None:
            raise ValueError("a PatientDocument needs its graph or its quads")
        self.id = id
        self.data = data
        self.source = source
        self.position = position
        self.extra = extra if extra is not None else {}
        self._graph = graph
        self._quads = quads

    def __repr__(self) -> str:
        return f"PatientDocument(id={self.id!r}, source={self.source!r}, position={self.position})"

    @property
    def graph(self) -> Graph:
        """The patient's triples as an rdflib graph (built from the quads on first use)."""
        if self._graph is None:
            graph = Graph(bind_namespaces="none")
            add = graph.add
            for q in self._quads or ():
                add((rdflib_term(q.subject), rdflib_term(q.predicate), rdflib_term(q.object)))
            self._graph = graph
        return self._graph

    @property
    def quads(self) -> list[ox.Quad]:
        """The patient's triples as pyoxigraph quads in the default graph."""
        if self._quads is None:
            assert self._graph is not None
            self._quads = [ox.Quad(ox_term(s), ox_term(p), ox_term(o)) for s, p, o in self._graph]
        return self._quads

    @property
    def unconverted_quads(self) -> list[ox.Quad] | None:
        """The quads while the rdflib graph has not been built from them (None once it has, or when the
        document was read as RDF): readers that only need the triples can use them and skip the graph."""
        return self._quads if self._graph is None else None

    @property
    def iri(self) -> str:
        """The patient's IRI in the graph."""
        return patient_iri(self.id)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<input>", position: int = 1) -> "PatientDocument":
        """Convert a JSON/YAML mapping to a patient graph.

        :raises FieldTypeError: when ``id`` is missing or not a string, or the document is not a mapping.
        :raises ParseError: when the JSON-LD processor rejects the document.
        """
        prepared = _prepare(data, source, position)
        return cls._parsed(prepared, _parse_with_oxigraph(prepared.doc))

    @classmethod
    def _parsed(cls, prepared: _Prepared, quads: list[ox.Quad] | None) -> PatientDocument:
        """The document from its prepared form and pyoxigraph's quads (None: rdflib converts it)."""
        graph = None
        if quads is None:
            try:
                graph = Graph(bind_namespaces="none")
                graph.parse(data=json.dumps(prepared.doc, allow_nan=False), format="json-ld")
            except Exception as exc:  # the JSON-LD processor raises many types on odd input
                raise ParseError(
                    f"the document is not valid under the patient JSON-LD context: {exc}",
                    source=f"{prepared.source}#{prepared.position}",
                    patient=prepared.id,
                ) from None
        return cls(
            id=prepared.id, graph=graph, quads=quads, data=prepared.data, source=prepared.source,
            position=prepared.position, extra={NODE_PATHS: prepared.node_paths, PRECHECK_ISSUES: prepared.issues},
        )

    @classmethod
    def from_raws(cls, raws: list[RawDocument]) -> list[PatientDocument | MyelomaKGError]:
        """:meth:`from_raw` of every document, in order, with the error in place of a document that fails.

        The JSON-LD of the documents pyoxigraph can convert is parsed in one pass, each document as a named
        graph of one JSON-LD document under the shared context: the context is processed once instead of
        once per document. The quads are those of :meth:`from_raw` (blank
        nodes are fresh in both); a batch the parser rejects is converted document by document.
        """
        out: list[PatientDocument | MyelomaKGError | None] = [None] * len(raws)
        batch: list[tuple[int, _Prepared, dict[str, Any]]] = []
        for i, raw in enumerate(raws):
            try:
                if raw.error is not None or raw.data is None:
                    out[i] = cls.from_raw(raw)
                    continue
                prepared = _prepare(raw.data, raw.source, raw.position)
                spelled = _spelled_for_oxigraph(prepared.doc)
                if spelled is None:
                    out[i] = cls._parsed(prepared, None)
                    continue
            except MyelomaKGError as exc:
                out[i] = exc
                continue
            del spelled["@context"]
            batch.append((i, prepared, spelled))
        labels = sum(len(prepared.node_paths) for _, prepared, _ in batch)
        quads_of = _parse_many_with_oxigraph([spelled for _, _, spelled in batch], labels) if batch else None
        for k, (i, prepared, spelled) in enumerate(batch):
            try:
                quads = quads_of[k] if quads_of is not None else _parse_with_oxigraph(prepared.doc)
                out[i] = cls._parsed(prepared, quads)
            except MyelomaKGError as exc:
                out[i] = exc
        return out  # type: ignore[return-value]

    @classmethod
    def from_graph(cls, graph: Graph, *, source: str = "<input>", position: int = 1) -> "PatientDocument":
        """Wrap an RDF graph that holds exactly one ``mkg:Patient``.

        :raises DataError: when the graph holds no patient or several.
        """
        patients = sorted(set(graph.subjects(RDF.type, MKG.Patient)))
        if len(patients) != 1:
            raise DataError(
                f"an RDF patient document must contain exactly one mkg:Patient, found {len(patients)}",
                source=source,
            )
        node = patients[0]
        pid_lit = graph.value(node, MKG.patientId)
        pid = str(pid_lit) if pid_lit is not None else str(node).rsplit("/", 1)[-1]
        if not isinstance(node, URIRef) or str(node) != patient_iri(pid):
            # Rename so that every patient graph uses the canonical IRI.
            new = URIRef(patient_iri(pid))
            renamed = Graph()
            for s, p, o in graph:
                renamed.add((new if s == node else s, p, new if o == node else o))
            graph = renamed
        if graph.value(URIRef(patient_iri(pid)), MKG.patientId) is None:
            graph.add((URIRef(patient_iri(pid)), MKG.patientId, Literal(pid)))
        return cls(id=pid, graph=graph, source=source, position=position)

    @classmethod
    def from_raw(cls, raw: RawDocument) -> "PatientDocument":
        """Convert a document read by :func:`myeloma_kg.io.read_documents`."""
        if raw.error is not None:
            raise raw.error
        if raw.data is not None:
            return cls.from_dict(raw.data, source=raw.source, position=raw.position)
        assert raw.rdf is not None
        text, fmt = raw.rdf
        return cls.from_graph(parse_rdf_text(text, fmt, raw.source), source=raw.source, position=raw.position)


# ---------------------------------------------------------------- JSON-LD to RDF

@dataclass(frozen=True)
class _Prepared:
    """A mapping checked and made ready for the JSON-LD parsers."""

    id: str
    data: dict[str, Any]  # the document as given (JSON values)
    doc: dict[str, Any]  # the JSON-LD document: context, patient IRI and type added
    node_paths: dict[str, str]
    source: str
    position: int
    issues: tuple[Issue, ...] = ()  # the pre-check issues (myeloma_kg.precheck) of ``data``


def _prepare(data: Any, source: str, position: int) -> _Prepared:
    """Check the id of a mapping and build its JSON-LD document.

    :raises FieldTypeError: when ``id`` is missing or not a string, or the document is not a mapping.
    """
    if not isinstance(data, dict):
        raise FieldTypeError(
            f"a patient document must be a mapping of fields, not a {type(data).__name__}", source=source
        )
    data = _jsonable(data)
    pid = data.get("id")
    if pid is None or (isinstance(pid, str) and not pid.strip()):
        raise FieldTypeError(
            "the patient has no id; add `id: <unique identifier>` (required, unique within a cohort)",
            field="id",
            source=f"{source}#{position}",
        )
    if isinstance(pid, bool) or not isinstance(pid, (str, int)):
        raise FieldTypeError(
            f"id must be a string, got {type(pid).__name__} {pid!r}", field="id", source=f"{source}#{position}"
        )
    pid = str(pid)
    issues, cleaned = precheck(data)
    # The graph is made from the pre-checked copy: ids and codes made IRI-safe, values a violation names left
    # out (for a well-formed document, the document itself). As written, a code such as "del 17p" or a drug
    # id with a space around it expands to an ill-formed IRI, which a JSON-LD processor drops without a word:
    # validation would not see it and reasoning would go on without it.
    converted = cleaned if isinstance(cleaned, dict) else data  # JSON values in, JSON values out
    doc = {k: v for k, v in converted.items() if not k.startswith("@")}
    node_paths = _label_nodes(doc)
    doc["@context"] = patient_context()
    doc["id"] = patient_iri(pid)
    doc["type"] = "Patient"
    doc["patientId"] = pid
    return _Prepared(pid, data, doc, node_paths, source, position, tuple(issues))


class _NotForOxigraph(Exception):
    """The document holds a value whose RDF form pyoxigraph and rdflib would spell differently."""


_XSD_DOUBLE = "http://www.w3.org/2001/XMLSchema#double"
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


@dataclass(frozen=True)
class _ContextKeys:
    """What the patient context says about each document key, for choosing the JSON-LD parser."""

    coerced: frozenset[str]  # keys whose values the context coerces (dates, codes)
    codes: frozenset[str]  # keys whose strings are codes or ids expanded against a vocabulary
    terms: frozenset[str]  # every term the context (or a scoped context) defines
    outer: frozenset[str]  # the terms of the context itself
    vocab_codes: frozenset[str]  # keys whose strings expand against the vocabulary (``"@type": "@vocab"``)
    scoped: dict[str, dict[str, Any]]  # key -> its property-scoped context (empty: none is spelled out)
    parse_context: dict[str, Any]  # the context pyoxigraph reads (without the scoped contexts in ``scoped``)


@dataclass(frozen=True)
class _Scope:
    """How codes expand in a region of a document under property-scoped contexts (outermost first)."""

    iris: dict[str, str | None]  # term -> absolute IRI (None: a keyword alias or an IRI left unresolved)
    vocab: str | None
    redefined: frozenset[str]  # the terms the region's scoped contexts define


def _absolute(iri: Any, context: dict[str, Any]) -> str | None:
    """A term definition's IRI made absolute with the context's prefixes (None when it is not an IRI)."""
    if isinstance(iri, dict):
        iri = iri.get("@id")
    if not isinstance(iri, str) or iri.startswith("@") or ":" not in iri:
        return None
    prefix, suffix = iri.split(":", 1)
    if prefix == "_":
        return None  # a blank node
    if suffix.startswith("//") or prefix not in context:
        return iri
    base = context[prefix]
    return base + suffix if isinstance(base, str) and re.fullmatch(r"[a-z][a-z0-9+.-]*:\S*[/#]", base) else None


def _compilable(definition: Any) -> bool:
    """Whether a term's property-scoped context can be spelled out before parsing: the term's strings
    expand against the vocabulary, and its context only sets an absolute ``@vocab`` and code terms."""
    if not isinstance(definition, dict) or definition.get("@type") != "@vocab":
        return False
    scoped = definition.get("@context")
    if not isinstance(scoped, dict):
        return False
    for name, value in scoped.items():
        if name == "@vocab":
            if not (isinstance(value, str) and re.fullmatch(r"[a-z][a-z0-9+.-]*://\S*[/#]", value)):
                return False
        elif name.startswith("@") or not (isinstance(value, str) or (isinstance(value, dict) and set(value) == {"@id"})):
            return False
    return True


@cache
def _context_keys() -> _ContextKeys:
    context = patient_context()
    coerced, codes, vocab_codes, terms = set(), set(), set(), set(context)
    for key, definition in context.items():
        if isinstance(definition, dict) and "@type" in definition:
            coerced.add(key)
            if definition["@type"] in ("@id", "@vocab"):
                codes.add(key)
            if definition["@type"] == "@vocab":
                vocab_codes.add(key)
            terms.update(definition.get("@context", {}))
    with_scope = {k: d for k, d in context.items() if isinstance(d, dict) and "@context" in d}
    # pyoxigraph processes a property-scoped context at every value of its term (a copy of the whole
    # active context each time: about half of a document's parse). Their codes are spelled out as
    # absolute IRIs instead (_spell_code), which the context without them reads the same way.
    scoped = {k: d["@context"] for k, d in with_scope.items()} if all(map(_compilable, with_scope.values())) else {}
    parse_context = {k: ({n: v for n, v in d.items() if n != "@context"} if k in scoped else d) for k, d in context.items()}
    outer = frozenset(k for k in context if not k.startswith("@"))
    return _ContextKeys(frozenset(coerced), frozenset(codes), frozenset(terms), outer, frozenset(vocab_codes),
                        scoped, parse_context)


@cache
def _scope(region: tuple[str, ...]) -> _Scope:
    """The codes of a region nested under the property-scoped contexts of ``region``'s keys."""
    context = patient_context()
    active: dict[str, Any] = dict(context)
    redefined: set[str] = set()
    for key in region:
        scoped = _context_keys().scoped[key]
        active.update(scoped)
        redefined.update(n for n in scoped if not n.startswith("@"))
    iris = {name: _absolute(value, active) for name, value in active.items() if not name.startswith("@")}
    vocab = active.get("@vocab")
    return _Scope(iris, vocab if isinstance(vocab, str) else None, frozenset(redefined))


def _spell_code(value: str, region: tuple[str, ...]) -> str:
    """A code under property-scoped contexts as the absolute IRI JSON-LD expands it to (a term of the
    active context, else the active vocabulary plus the code)."""
    scope = _scope(region)
    if value in scope.iris:
        iri = scope.iris[value]
        if iri is None:
            raise _NotForOxigraph(value)
        return iri
    if scope.vocab is None or not _PLAIN_NAME.fullmatch(value):
        raise _NotForOxigraph(value)
    return scope.vocab + value


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]*")


def _spell_numbers(value: Any, key: str, keys: _ContextKeys, region: tuple[str, ...] = ()) -> Any:
    """Spell JSON numbers as rdflib's JSON-LD parser does (``70.7``, not the canonical ``7.07E1``), and
    codes under property-scoped contexts as the absolute IRIs they expand to.

    Documents are converted by pyoxigraph's JSON-LD parser (about five times faster than rdflib's). The
    two agree on documents as people write them, except on the lexical form of decimals, which this makes
    explicit. Anything where they could part ways raises :class:`_NotForOxigraph` and is left to rdflib:
    keys or codes that are not plain names (pyoxigraph resolves some against the working directory), ids
    and types inside the document, and non-string values where the context expects a date or a code.
    ``region`` names the keys with a scoped context ``value`` is nested under (see :attr:`_ContextKeys.scoped`):
    there, keys must be terms of the context that no scoped context redefines.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "@id" and isinstance(v, str) and v.startswith("_:"):
                out[k] = v  # a node label given by _label_nodes
                continue
            if not isinstance(k, str) or k in ("id", "type") or k.startswith("@") or (
                    k not in keys.terms and not _PLAIN_NAME.fullmatch(k)) or (
                    region and (k not in keys.outer or k in _scope(region).redefined)):
                raise _NotForOxigraph(k)
            out[k] = _spell_numbers(v, k, keys, region + (k,) if k in keys.scoped else region)
        return out
    if isinstance(value, list):
        return [_spell_numbers(v, key, keys, region) for v in value]
    if value is None:
        return value
    if isinstance(value, str):
        if key in keys.codes and value not in keys.terms and not _PLAIN_NAME.fullmatch(value):
            raise _NotForOxigraph(key)
        if region and key in keys.vocab_codes:
            return _spell_code(value, region)
        return value
    if key in keys.coerced:
        raise _NotForOxigraph(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) >= 10**21:
            raise _NotForOxigraph(key)
        return value
    if isinstance(value, float):
        return {"@value": str(value), "@type": _XSD_DOUBLE}
    raise _NotForOxigraph(key)


def _spelled_for_oxigraph(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The document as pyoxigraph's JSON-LD parser must read it (numbers spelled as rdflib reads them), or
    None when rdflib must convert it."""
    try:
        keys = _context_keys()
        spelled = {}
        for k, v in doc.items():
            if k == "@context":
                if v is not patient_context() and v != patient_context():
                    return None
                spelled[k] = keys.parse_context
            elif k in ("id", "type"):
                spelled[k] = v
            elif k.startswith("@") or (k not in keys.terms and not _PLAIN_NAME.fullmatch(k)):
                return None
            else:
                spelled[k] = _spell_numbers(v, k, keys, (k,) if k in keys.scoped else ())
        return spelled
    except _NotForOxigraph:
        return None


def _parse_with_oxigraph(doc: dict[str, Any]) -> list[ox.Quad] | None:
    """The document's triples from pyoxigraph's JSON-LD parser, or None when rdflib must convert it.

    rdflib's parser stays the reference for everything pyoxigraph rejects or would spell differently
    (the tests compare both on every document of the test suite and on synthetic cohorts).
    """
    spelled = _spelled_for_oxigraph(doc)
    if spelled is None:
        return None
    try:
        return list(ox.parse(json.dumps(spelled, allow_nan=False), format=ox.RdfFormat.JSON_LD))
    except (SyntaxError, ValueError):
        return None


_DOC_GRAPH = "urn:x-myeloma-kg:document:"


def _parse_many_with_oxigraph(spelled: list[dict[str, Any]], labels: int) -> list[list[ox.Quad]] | None:
    """The quads of each spelled document (context removed), parsed as the named graphs of one JSON-LD
    document; None when the parser rejects it, or when a document names blank nodes of its own: ``_:``
    labels are shared by the named graphs of one document (not by separate documents), and only the
    ``labels`` ones :func:`_label_nodes` made, unique to their document, may appear."""
    try:
        text = json.dumps({"@context": _context_keys().parse_context,
                           "@graph": [{"@id": f"{_DOC_GRAPH}{k}", "@graph": doc} for k, doc in enumerate(spelled)]},
                          allow_nan=False)
    except ValueError:
        return None
    if text.count('"_:') != labels:
        return None
    # Each document's quads move to the default graph through N-Quads text: pyoxigraph's parser makes them
    # (ox.Quad() costs 3-5 us for a blank node or a literal). A line ends with its graph's IRI.
    marker = f" <{_DOC_GRAPH}"
    lines: list[list[str]] = [[] for _ in spelled]
    try:
        nquads = ox.serialize(ox.parse(text, format=ox.RdfFormat.JSON_LD), format=ox.RdfFormat.N_QUADS)
        for line in nquads.decode("utf-8").split("\n"):  # not splitlines(): literals may hold U+2028 ...
            if not line:
                continue
            triple, found, graph = line.rpartition(marker)
            if not found or not graph.endswith("> ."):
                return None  # a quad outside the documents' graphs
            k = int(graph[:-3])
            if not 0 <= k < len(lines):
                return None
            lines[k].append(triple)
        body = " .\n".join(line for doc in lines for line in doc)
        quads = list(ox.parse(body + " .\n", format=ox.RdfFormat.N_TRIPLES, lenient=True)) if body else []
    except (SyntaxError, ValueError):
        return None
    out: list[list[ox.Quad]] = []
    start = 0
    for doc in lines:
        out.append(quads[start:start + len(doc)])
        start += len(doc)
    return out


def ox_term(term: Any) -> Any:
    """An rdflib term as a pyoxigraph term."""
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if term.language:
        return ox.Literal(str(term), language=term.language)
    if term.datatype is not None:
        return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
    return ox.Literal(str(term))


def rdflib_term(term: Any) -> Any:
    """A pyoxigraph term as rdflib's parsers give it (an xsd:string literal is a plain literal)."""
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if term.language:
        return Literal(term.value, lang=term.language)
    if term.datatype.value == _XSD_STRING:
        return Literal(term.value)  # a plain literal, as rdflib's parsers give it
    return Literal(term.value, datatype=URIRef(term.datatype.value))



_FORMAT_NAMES = {"turtle": "Turtle", "nt": "N-Triples", "json-ld": "JSON-LD", "n3": "N3", "xml": "RDF/XML"}


def parse_rdf_text(text: str, fmt: str, source: str = "<input>") -> Graph:
    """Parse RDF text into a graph, raising :class:`ParseError` with line and column where known.

    >>> parse_rdf_text("<a> <b> .", "nt", "x.nt")
    Traceback (most recent call last):
    ...
    myeloma_kg.errors.ParseError: x.nt:1: malformed N-Triples: Invalid line: <a> <b> .
    """
    name = _FORMAT_NAMES.get(fmt, fmt)
    if fmt == "json-ld":
        from .io import parse_json_text

        try:
            parse_json_text(text, source)
        except ParseError as exc:
            raise ParseError(
                exc.message.replace("malformed JSON", "malformed JSON-LD"),
                source=source,
                line=exc.line,
                column=exc.column,
            ) from None
    graph = Graph()
    try:
        graph.parse(data=text, format=fmt)
    except Exception as exc:  # rdflib raises many parser-specific types
        line, column, why = _rdf_error_location(exc, text)
        raise ParseError(f"malformed {name}: {why}", source=source, line=line, column=column) from None
    return graph


def _rdf_error_location(exc: Exception, text: str) -> tuple[int | None, int | None, str]:
    """Line, column and reason of an rdflib parser error."""
    why = str(getattr(exc, "_why", "") or exc).strip()
    lines = getattr(exc, "lines", None)
    if isinstance(lines, int):  # notation3.BadSyntax: 0-based line, character index into the text
        index = getattr(exc, "_i", -1)
        column = None
        if isinstance(index, int) and 0 <= index <= len(text):
            column = index - (text.rfind("\n", 0, index) + 1) + 1
        return lines + 1, column, why
    line = getattr(exc, "lineno", None)
    if line is None:
        match = re.match(r"Invalid line: (.*)", why, re.S)
        if match:
            wanted = match.group(1).strip()
            for number, content in enumerate(text.splitlines(), start=1):
                if content.strip() == wanted:
                    line = number
                    break
    why = why.splitlines()[0] if why else type(exc).__name__
    return line, getattr(exc, "colno", None), why


def _label_nodes(doc: dict[str, Any]) -> dict[str, str]:
    """Give every nested mapping of ``doc`` a blank-node label and return ``{label: field path}``.

    The labels only tie RDF nodes back to document fields (``lines[0].transplant``); they are unique per
    call, so graphs of different documents can be merged safely. Mappings that carry their own ``id`` or a
    JSON-LD keyword are left alone. ``doc`` is modified in place (it is the caller's private copy).
    """
    prefix = "d" + secrets.token_hex(6)
    paths: dict[str, str] = {}

    def visit(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                out[key] = visit(item, child) if not str(key).startswith("@") else item
            if path and not any(str(k).startswith("@") or k == "id" for k in value):
                label = f"{prefix}n{len(paths)}"
                out["@id"] = "_:" + label
                paths[label] = path
            return out
        if isinstance(value, list):
            return [visit(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    for key in list(doc):
        doc[key] = visit(doc[key], key)
    return paths


PatientInput = "str | Path | dict[str, Any] | Graph | PatientDocument"


def load_patient(patient: Any) -> PatientDocument:
    """Load one patient from a path, a mapping, an rdflib Graph or a :class:`PatientDocument`.

    :raises DataError: for unreadable or malformed input, or a file holding several patients.
    """
    if isinstance(patient, PatientDocument):
        return patient
    if isinstance(patient, Graph):
        return PatientDocument.from_graph(patient)
    if isinstance(patient, dict):
        return PatientDocument.from_dict(patient)
    if isinstance(patient, (str, Path)):
        docs = list(read_documents(patient))
        if len(docs) != 1:
            raise DataError(f"{patient}: expected one patient document, found {len(docs)}")
        return PatientDocument.from_raw(docs[0])
    raise FieldTypeError(f"cannot load a patient from a {type(patient).__name__}")


def load_patients(path: str | Path) -> list[PatientDocument | DataError]:
    """Load every patient of a file or directory; a failing document yields its error in place."""
    out: list[PatientDocument | DataError] = []
    for raw in read_documents(path):
        try:
            out.append(PatientDocument.from_raw(raw))
        except DataError as exc:
            out.append(exc)
    return out
