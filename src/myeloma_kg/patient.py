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
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from .errors import DataError, FieldTypeError, ParseError
from .io import RawDocument, _jsonable, read_documents
from .namespaces import MKG, PATIENT
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


@dataclass
class PatientDocument:
    """One patient: the document as given, its RDF graph, and where it came from."""

    id: str
    graph: Graph
    data: dict[str, Any] | None = None
    source: str = "<input>"
    position: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

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
        doc = {k: v for k, v in data.items() if not k.startswith("@")}
        node_paths = _label_nodes(doc)
        doc["@context"] = patient_context()
        doc["id"] = patient_iri(pid)
        doc["type"] = "Patient"
        doc["patientId"] = pid
        graph = Graph()
        try:
            text = json.dumps(doc, allow_nan=False)
            graph.parse(data=text, format="json-ld")
        except Exception as exc:  # the JSON-LD processor raises many types on odd input
            raise ParseError(
                f"the document is not valid under the patient JSON-LD context: {exc}",
                source=f"{source}#{position}",
                patient=pid,
            ) from None
        return cls(
            id=pid, graph=graph, data=data, source=source, position=position, extra={NODE_PATHS: node_paths}
        )

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
