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
        doc["@context"] = patient_context()
        doc["id"] = patient_iri(pid)
        doc["type"] = "Patient"
        doc["patientId"] = pid
        graph = Graph()
        try:
            graph.parse(data=json.dumps(doc), format="json-ld")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ParseError(
                f"the document is not valid under the patient JSON-LD context: {exc}",
                source=f"{source}#{position}",
                patient=pid,
            ) from None
        return cls(id=pid, graph=graph, data=data, source=source, position=position)

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
        graph = Graph()
        try:
            graph.parse(data=text, format=fmt)
        except Exception as exc:  # rdflib raises many parser-specific types
            line = getattr(exc, "lineno", None)
            raise ParseError(f"malformed {fmt}: {exc}", source=raw.source, line=line) from None
        return cls.from_graph(graph, source=raw.source, position=raw.position)


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
