"""RDF namespaces of the knowledge graph."""

from __future__ import annotations

from rdflib import Namespace

BASE = "https://w3id.org/myeloma-kg/"
MKG = Namespace(BASE)
DRUG = Namespace(BASE + "drug/")
REGIMEN = Namespace(BASE + "regimen/")
TRIAL = Namespace(BASE + "trial/")
SOURCE = Namespace(BASE + "source/")
RULE = Namespace(BASE + "rule/")
RECOMMENDATION = Namespace(BASE + "recommendation/")
PROFILE = Namespace(BASE + "profile/")
PATIENT = Namespace(BASE + "patient/")

PREFIXES: dict[str, str] = {
    "mkg": str(MKG),
    "drug": str(DRUG),
    "reg": str(REGIMEN),
    "trial": str(TRIAL),
    "src": str(SOURCE),
    "rule": str(RULE),
    "rec": str(RECOMMENDATION),
    "prof": str(PROFILE),
    "pt": str(PATIENT),
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "sh": "http://www.w3.org/ns/shacl#",
}


def local_id(iri: str, namespace: Namespace | str) -> str:
    """Return the identifier of ``iri`` inside ``namespace``, or the IRI itself if it is outside.

    >>> local_id("https://w3id.org/myeloma-kg/drug/lenalidomide", DRUG)
    'lenalidomide'
    """
    ns = str(namespace)
    return iri[len(ns):] if iri.startswith(ns) else iri
