"""HermiT agrees with the fast path (SPARQL rules + ``reasonable``) on the vignette patients.

For every OWL-defined situation class (those with an owl:equivalentClass axiom), the classes the
engine assigned to each vignette patient must equal the classes HermiT infers from the same derived
facts. The engine's own rdf:type assertions are withheld from HermiT, and dates are dropped (HermiT
rejects xsd:date); one JVM run covers all patients.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, XSD

from myeloma_kg.io import read_documents
from myeloma_kg.kb import load_kb_graph
from myeloma_kg.namespaces import MKG
from myeloma_kg.patient import PatientDocument
from myeloma_kg.reason import to_rdflib
from test_hermit import upward_closure

owlready2 = pytest.importorskip("owlready2")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("java") is None, reason="HermiT needs Java")]

VIGNETTES = sorted((Path(__file__).parent / "end_to_end" / "vignettes").glob("*/patient.yaml"))
FACT_PROPERTIES = {MKG.exposedTo, MKG.refractoryTo, MKG.refractoryAtMaintenanceDose, MKG.frailty, MKG.priorLineCount,
                   MKG.relapse, MKG.cytogenetics, MKG.plasmaCellLeukemia, MKG.extramedullaryDisease,
                   MKG.transplantEligible, MKG.donorAvailable, MKG.prefersOral, MKG.lab}
NODE_PROPERTIES = {MKG.kind, MKG.tempo, MKG.finding}


def defined_situations(kb: Graph) -> set[URIRef]:
    situations = set(kb.transitive_subjects(RDFS.subClassOf, MKG.PatientSituation))
    return {c for c in situations if isinstance(c, URIRef) and (c, OWL.equivalentClass, None) in kb}


@pytest.fixture(scope="module")
def classified(engine, tmp_path_factory: pytest.TempPathFactory):
    docs = [PatientDocument.from_raw(raw) for path in VIGNETTES for raw in read_documents(path)]
    _, store = engine.run(docs, keep_store=True)
    kb = load_kb_graph()
    defined = defined_situations(kb)
    facts, fast = Graph(), {}
    for doc in docs:
        node = URIRef(doc.iri)
        facts.add((node, RDF.type, MKG.Patient))
        facts.add((node, RDF.type, OWL.NamedIndividual))
        types = set()
        for quad in store.quads_for_pattern(to_ox(node), None, None):
            p, o = to_rdflib(quad.predicate), to_rdflib(quad.object)
            if p == RDF.type:
                types.add(o)
            elif p in FACT_PROPERTIES and not (isinstance(o, Literal) and o.datatype == XSD.date):
                facts.add((node, p, o))
                if isinstance(o, BNode):
                    for q2 in store.quads_for_pattern(to_ox(o), None, None):
                        p2 = to_rdflib(q2.predicate)
                        if p2 in NODE_PROPERTIES:
                            facts.add((o, p2, to_rdflib(q2.object)))
        fast[node] = types & defined
    merged = Graph()
    for triple in kb:
        if triple[1] != OWL.imports:
            merged.add(triple)
    for triple in facts:
        merged.add(triple)
    path = tmp_path_factory.mktemp("hermit-fast") / "merged.owl"
    merged.serialize(path, format="xml")
    world = owlready2.World()
    world.get_ontology(path.as_uri()).load()
    with world.get_ontology("http://example.org/hermit-fast-path#"):
        owlready2.sync_reasoner(world, infer_property_values=False, debug=0)
    graph = world.as_rdflib_graph()
    hermit = {node: upward_closure(graph, set(graph.objects(node, RDF.type))) & defined for node in fast}
    return fast, hermit


def to_ox(term):
    from myeloma_kg.reason import to_ox as convert

    return convert(term)


def test_fast_path_agrees_with_hermit(classified) -> None:
    fast, hermit = classified
    assert fast, "no patient was classified"
    differences = {str(node).rsplit("/", 1)[-1]: (sorted(map(str, fast[node] - hermit[node])),
                                                  sorted(map(str, hermit[node] - fast[node])))
                   for node in fast if fast[node] != hermit[node]}
    assert not differences, f"fast-path-only vs HermiT-only classes per patient: {differences}"
    assert any(MKG.LenalidomideRefractoryPatient in types for types in fast.values())
    assert any(MKG.TripleClassRefractoryPatient in types for types in fast.values())
