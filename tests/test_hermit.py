"""DL reasoning with HermiT (owlready2): the merged ontology is consistent, the defined classes
classify a few fixture patients and regimens as expected, and the OWL 2 RL closure of
``reasonable`` (``KnowledgeBase.inferred``) agrees with HermiT on them.

owlready2 cannot read Turtle and would try to fetch ``owl:imports`` from the web, so the merged graph
(imports removed) is written as RDF/XML to a temporary folder first. HermiT rejects ``xsd:date``, so
the fixture patients carry no dates. owlready2's ``World.individuals()`` skips individuals without
``owl:NamedIndividual`` and the reasoner asserts only the most specific types, so memberships are read
from the rdf:type triples of ``world.as_rdflib_graph()`` and closed upwards over the subclass triples of
that same graph (which holds HermiT's inferred class hierarchy).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import OWL, RDF, RDFS, XSD

from myeloma_kg.kb import KnowledgeBase, load_kb_graph
from myeloma_kg.namespaces import DRUG, MKG, PATIENT, REGIMEN

owlready2 = pytest.importorskip("owlready2")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="HermiT needs a Java runtime"),
]

PT = Namespace(str(PATIENT))

# individual -> classes it must belong to, and classes it must not belong to
EXPECTED: dict[URIRef, tuple[set[URIRef], set[URIRef]]] = {
    PT["hermit-len-refractory"]: (
        {MKG.LenalidomideRefractoryPatient, MKG.LenalidomideExposedPatient, MKG.IMiDRefractoryPatient},
        {MKG.TripleClassRefractoryPatient, MKG.PIExposedPatient},
    ),
    PT["hermit-triple-class"]: (
        {MKG.TripleClassRefractoryPatient, MKG.TripleClassExposedPatient, MKG.DoubleClassRefractoryPatient,
         MKG.LenalidomideRefractoryPatient, MKG.AntiCD38RefractoryPatient},
        {MKG.PentaDrugRefractoryPatient, MKG.BCMAExposedPatient},
    ),
    PT["hermit-pom-exposed"]: (
        {MKG.IMiDExposedPatient},
        {MKG.LenalidomideExposedPatient, MKG.IMiDRefractoryPatient},
    ),
    PT["hermit-frail-first"]: (
        {MKG.FirstRelapsePatient, MKG.FrailPatient, MKG.BCMAExposedPatient, MKG.TCellRedirectionExposedPatient},
        {MKG.FitPatient},
    ),
    REGIMEN.drd: (
        {MKG.LenalidomideContainingOption, MKG.RdBasedTriplet, MKG.AntiCD38ContainingOption,
         MKG.IMiDContainingOption, MKG.FrontLineRegimen},
        {MKG.BortezomibContainingOption},
    ),
    REGIMEN.dvd: (
        {MKG.BortezomibContainingOption, MKG.AntiCD38ContainingOption, MKG.PIContainingOption},
        {MKG.LenalidomideContainingOption, MKG.RdBasedTriplet},
    ),
    REGIMEN.cilta_cel: ({MKG.TCellRedirectingOption, MKG.CellTherapy}, {MKG.PIContainingOption}),
    REGIMEN.bvd: ({MKG.BelantamabContainingOption, MKG.BortezomibContainingOption}, set()),
}


def fixture_patients() -> Graph:
    g = Graph()

    def patient(name: str) -> URIRef:
        node = PT[name]
        g.add((node, RDF.type, MKG.Patient))
        g.add((node, RDF.type, OWL.NamedIndividual))
        return node

    p = patient("hermit-len-refractory")
    g.add((p, MKG.refractoryTo, DRUG.lenalidomide))
    p = patient("hermit-triple-class")
    for drug in ("lenalidomide", "bortezomib", "daratumumab"):
        g.add((p, MKG.refractoryTo, DRUG[drug]))
    p = patient("hermit-pom-exposed")
    g.add((p, MKG.exposedTo, DRUG.pomalidomide))
    p = patient("hermit-frail-first")
    g.add((p, MKG.priorLineCount, Literal(1, datatype=XSD.integer)))
    g.add((p, MKG.frailty, MKG.Frail))
    g.add((p, MKG.exposedTo, DRUG.idecabtagene_vicleucel))
    return g


def merged_with_patients() -> Graph:
    g = Graph()
    for triple in load_kb_graph():
        if triple[1] != OWL.imports:
            g.add(triple)
    for triple in fixture_patients():
        g.add(triple)
    return g


def mkg_classes(types: set[URIRef]) -> set[URIRef]:
    ns = str(MKG)
    return {t for t in types if str(t).startswith(ns) and "/" not in str(t)[len(ns):]}


@pytest.fixture(scope="module")
def hermit_types(tmp_path_factory: pytest.TempPathFactory) -> dict[URIRef, set[URIRef]]:
    folder: Path = tmp_path_factory.mktemp("hermit")
    path = folder / "myeloma-kg-merged.owl"
    merged_with_patients().serialize(path, format="xml")
    world = owlready2.World()
    world.get_ontology(path.as_uri()).load()
    try:
        with world.get_ontology("http://example.org/hermit-inferences#"):
            owlready2.sync_reasoner(world, infer_property_values=False, debug=0)
    except owlready2.OwlReadyInconsistentOntologyError:
        pytest.fail(
            "HermiT finds the merged ontology inconsistent; `myeloma-kg kb check` names the usual causes "
            "(datatype-range: a literal whose datatype differs from its property's range, such as \"...\"@en "
            "on an xsd:string property)"
        )
    assert list(world.inconsistent_classes()) == []
    graph = world.as_rdflib_graph()  # asserted plus the inferred axioms HermiT returned
    return {node: upward_closure(graph, set(graph.objects(node, RDF.type))) for node in EXPECTED}


def upward_closure(graph: Graph, classes: set) -> set[URIRef]:
    """Named classes and every named superclass, following the rdfs:subClassOf and owl:equivalentClass
    triples of the graph.

    Workaround: a class that is also used as an individual (punning: recommendations point at
    situation classes with mkg:appliesWhen) gets its inferred superclasses written by owlready2 as
    rdf:type triples, not rdfs:subClassOf (owlready2 0.51 keys HermiT's answer by entity kind); so an
    mkg class asserted as the rdf:type of a class counts as a superclass too.
    """
    found = {URIRef(str(c)) for c in classes if isinstance(c, URIRef)}
    frontier = list(found)
    while frontier:
        cls_iri = frontier.pop()
        neighbours = set(graph.objects(cls_iri, RDFS.subClassOf)) | set(graph.objects(cls_iri, OWL.equivalentClass))
        neighbours |= set(graph.subjects(OWL.equivalentClass, cls_iri))
        if (cls_iri, RDF.type, OWL.Class) in graph:
            neighbours |= {t for t in graph.objects(cls_iri, RDF.type) if str(t).startswith(str(MKG))}
        for parent in neighbours:
            if isinstance(parent, URIRef) and parent not in found:
                found.add(parent)
                frontier.append(parent)
    return found


@pytest.fixture(scope="module")
def rl_types() -> dict[URIRef, set[URIRef]]:
    kb = KnowledgeBase.from_graph(merged_with_patients())
    return {node: set(kb.inferred.objects(node, RDF.type)) for node in EXPECTED}


@pytest.mark.parametrize("node", list(EXPECTED), ids=[str(n).rsplit("/", 1)[1] for n in EXPECTED])
def test_hermit_classifies(hermit_types: dict[URIRef, set[URIRef]], node: URIRef) -> None:
    required, forbidden = EXPECTED[node]
    assert required <= hermit_types[node], required - hermit_types[node]
    assert not forbidden & hermit_types[node]


@pytest.mark.parametrize("node", list(EXPECTED), ids=[str(n).rsplit("/", 1)[1] for n in EXPECTED])
def test_owl_rl_closure_agrees_with_hermit(
    hermit_types: dict[URIRef, set[URIRef]], rl_types: dict[URIRef, set[URIRef]], node: URIRef
) -> None:
    required, forbidden = EXPECTED[node]
    assert required <= rl_types[node] and not forbidden & rl_types[node]
    assert mkg_classes(rl_types[node]) == mkg_classes(hermit_types[node])
