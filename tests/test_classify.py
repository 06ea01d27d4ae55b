"""The compiled classifier entails exactly what the ``reasonable`` OWL 2 RL reasoner entails.

Three levels: small hand-written TBoxes, one per construct of the fragment (each checked against
``reasonable`` as well as against the expected classes); every test patient and a synthetic cohort
through the real pipeline; and hypothesis-generated fact sets over the real ontology's vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF, XSD

from myeloma_kg.classify import Classifier, read_axioms
from myeloma_kg.errors import KnowledgeBaseError, UsageError
from myeloma_kg.io import _jsonable
from myeloma_kg.patient import PatientDocument, load_patient
from myeloma_kg.reason import (
    CLASSIFY_AFTER_STAGE,
    Reasoner,
    classify_with_reasonable,
    knowledge_template,
)
from myeloma_kg.synth import generate

EX = "urn:example:"
TESTS = Path(__file__).parent
MKG = "https://w3id.org/myeloma-kg/"


def _tbox(turtle: str) -> tuple[tuple[object, object, object], ...]:
    graph = Graph().parse(data="@prefix ex: <urn:example:> . @prefix owl: <http://www.w3.org/2002/07/owl#> . "
                               "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> . "
                               "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> . " + turtle, format="turtle")
    return tuple(graph)


def _n(name: str) -> ox.NamedNode:
    return ox.NamedNode(EX + name)


def _classes(pairs: list[tuple[object, object]], subject: object) -> set[str]:
    return {c.value.removeprefix(EX) for s, c in pairs if s == subject and c.value.startswith(EX)}


def _both(tbox: tuple, facts: list[tuple[object, object, object]]) -> list[tuple[object, object]]:
    """Classify with the compiled classifier, and assert reasonable agrees."""
    compiled = Classifier(tbox).classify(facts)
    assert sorted(map(str, compiled)) == sorted(map(str, classify_with_reasonable(tbox, facts)))
    return compiled


TYPE = ox.NamedNode(str(RDF.type))
X, Y = _n("x"), _n("y")


def test_has_value_with_iri_and_typed_literal() -> None:
    tbox = _tbox("ex:A owl:equivalentClass [ owl:onProperty ex:p ; owl:hasValue ex:v ] . "
                 "ex:B owl:equivalentClass [ owl:onProperty ex:flag ; owl:hasValue true ] .")
    found = _both(tbox, [(X, _n("p"), _n("v")), (X, _n("flag"), ox.Literal("true", datatype=ox.NamedNode(str(XSD.boolean)))),
                         (Y, _n("p"), _n("w")), (Y, _n("flag"), ox.Literal("false", datatype=ox.NamedNode(str(XSD.boolean))))])
    assert _classes(found, X) == {"A", "B"}
    assert _classes(found, Y) == set()  # the edge: another value, the other boolean


def test_some_values_from_named_filler_nested_restriction_and_thing() -> None:
    tbox = _tbox("ex:d1 a ex:Drug . ex:d2 a ex:Other . "
                 "ex:Exposed owl:equivalentClass [ owl:onProperty ex:took ; owl:someValuesFrom ex:Drug ] . "
                 "ex:Nested owl:equivalentClass [ owl:onProperty ex:finding ; owl:someValuesFrom "
                 "  [ owl:onProperty ex:kind ; owl:hasValue ex:high ] ] . "
                 "ex:HasLab owl:equivalentClass [ owl:onProperty ex:lab ; owl:someValuesFrom owl:Thing ] .")
    node, other = ox.BlankNode("n1"), ox.BlankNode("n2")
    found = _both(tbox, [(X, _n("took"), _n("d1")), (X, _n("finding"), node), (node, _n("kind"), _n("high")),
                         (X, _n("lab"), ox.Literal("1")),
                         (Y, _n("took"), _n("d2")), (Y, _n("finding"), other), (other, _n("kind"), _n("low"))])
    assert _classes(found, X) == {"Exposed", "Nested", "HasLab"}
    assert _classes(found, Y) == set()
    assert (node, ox.NamedNode(str(OWL.Thing))) in found  # every subject is an owl:Thing


def test_intersection_union_subclass_and_subproperty() -> None:
    tbox = _tbox("ex:refractory rdfs:subPropertyOf ex:took . ex:d1 a ex:Drug . ex:d2 a ex:Drug2 . "
                 "ex:R1 owl:equivalentClass [ owl:onProperty ex:refractory ; owl:someValuesFrom ex:Drug ] . "
                 "ex:E1 owl:equivalentClass [ owl:onProperty ex:took ; owl:someValuesFrom ex:Drug ] . "
                 "ex:E2 owl:equivalentClass [ owl:onProperty ex:took ; owl:someValuesFrom ex:Drug2 ] . "
                 "ex:Both owl:equivalentClass [ owl:intersectionOf ( ex:E1 ex:E2 ) ] . "
                 "ex:Either owl:equivalentClass [ owl:unionOf ( [ owl:onProperty ex:a ; owl:hasValue true ] "
                 "  [ owl:onProperty ex:b ; owl:hasValue true ] ) ] . "
                 "ex:R1 rdfs:subClassOf ex:Situation . ex:Situation rdfs:subClassOf ex:Patient .")
    true = ox.Literal("true", datatype=ox.NamedNode(str(XSD.boolean)))
    found = _both(tbox, [(X, _n("refractory"), _n("d1")), (X, _n("took"), _n("d2")), (X, _n("b"), true),
                         (Y, _n("took"), _n("d1")), (Y, _n("a"), ox.Literal("true"))])
    assert _classes(found, X) == {"R1", "E1", "E2", "Both", "Either", "Situation", "Patient"}
    assert _classes(found, Y) == {"E1"}  # not refractory, one class only, a plain-string "true"


def test_asserted_subclass_implies_the_definition_of_its_superclass() -> None:
    """cls-hv1 backwards: a rule asserts a subclass of 'refractory to d1', so the individual is
    refractory to d1, hence exposed to a Drug."""
    tbox = _tbox("ex:refractory rdfs:subPropertyOf ex:took . ex:d1 a ex:Drug . "
                 "ex:RefD1 owl:equivalentClass [ owl:onProperty ex:refractory ; owl:hasValue ex:d1 ] . "
                 "ex:Progressed rdfs:subClassOf ex:RefD1 . "
                 "ex:TookDrug owl:equivalentClass [ owl:onProperty ex:took ; owl:someValuesFrom ex:Drug ] . "
                 "ex:TookD1 owl:equivalentClass [ owl:onProperty ex:took ; owl:hasValue ex:d1 ] . "
                 "ex:Pair owl:equivalentClass [ owl:intersectionOf ( ex:TookD1 ex:Other ) ] .")
    found = _both(tbox, [(X, TYPE, _n("Progressed")), (Y, TYPE, _n("Other")), (Y, TYPE, _n("TookD1"))])
    assert _classes(found, X) == {"RefD1", "TookDrug", "TookD1"}
    assert _classes(found, Y) == {"Pair", "TookDrug"}


def test_a_construct_outside_the_fragment_is_refused() -> None:
    tbox = _tbox("ex:A owl:equivalentClass [ owl:onProperty ex:p ; owl:allValuesFrom ex:B ] .")
    with pytest.raises(KnowledgeBaseError, match="outside the fragment"):
        read_axioms(tbox)


def test_unknown_classifier_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="reasonable"):
        Reasoner(classifier="hermit")


# ---------------------------------------------------------------- the real ontology and patients

def _case_documents() -> list[PatientDocument]:
    docs = [load_patient(p) for p in sorted((TESTS / "end_to_end" / "vignettes").glob("*/patient.yaml"))]
    for path in sorted((TESTS / "cases").glob("*/*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("patient"), dict):
            docs.append(PatientDocument.from_dict(_jsonable(data["patient"]), source=str(path)))
    return docs


def _classified(reasoner: Reasoner, docs: list[PatientDocument]) -> list[str]:
    """Run the stages before classification, classify, and return what classification added."""
    store = reasoner.new_store()
    reasoner.add_patients(store, [d.quads for d in docs])
    for query in reasoner.queries:
        if query.stage > CLASSIFY_AFTER_STAGE:
            break
        reasoner.run_rule(store, query)
    before = set(store)
    reasoner.classify(store)
    # rule-made blank nodes differ between stores: compare named subjects exactly, blank ones by class
    added = set(store) - before
    named = sorted(str(q) for q in added if isinstance(q.subject, ox.NamedNode))
    blank = sorted(q.object.value for q in added if not isinstance(q.subject, ox.NamedNode))
    return named + blank


def test_every_test_patient_is_classified_as_reasonable_classifies_it() -> None:
    docs = _case_documents()
    assert len(docs) > 100
    for start in range(0, len(docs), 40):
        chunk = docs[start:start + 40]
        assert _classified(Reasoner(), chunk) == _classified(Reasoner(classifier="reasonable"), chunk)


def test_a_synthetic_cohort_is_classified_as_reasonable_classifies_it() -> None:
    docs = [PatientDocument.from_dict(raw, source="synth") for raw in generate(150, seed=7)]
    compiled = _classified(Reasoner(), docs)
    assert compiled == _classified(Reasoner(classifier="reasonable"), docs)
    assert any("TripleClassRefractoryPatient" in line for line in compiled)  # deep definitions occur


# ---------------------------------------------------------------- generated facts over the real vocabulary

def _vocabulary() -> tuple[list[ox.NamedNode], list[ox.NamedNode], list[ox.NamedNode]]:
    template = knowledge_template()
    graph = Graph()
    for triple in template.tbox:
        graph.add(triple)  # type: ignore[arg-type]
    drugs = sorted({s for s, o in graph.subject_objects(RDF.type) if str(o) == MKG + "Drug"})
    situations = sorted({s for s in graph.subjects(RDF.type, OWL.Class) if isinstance(s, URIRef)})
    values = sorted({o for o in graph.objects(None, OWL.hasValue) if isinstance(o, URIRef)} - set(drugs))
    to_ox = lambda nodes: [ox.NamedNode(str(n)) for n in nodes]
    return to_ox(drugs), to_ox(situations), to_ox(values)


DRUGS, SITUATIONS, VALUES = _vocabulary()
PREDICATES = [ox.NamedNode(MKG + p) for p in ("exposedTo", "refractoryTo", "refractoryAtMaintenanceDose")]
BOOLEAN = [ox.NamedNode(MKG + p) for p in ("transplantEligible", "prefersOral", "donorAvailable",
                                             "plasmaCellLeukemia", "extramedullaryDisease")]


@st.composite
def patient_facts(draw: st.DrawFn) -> list[tuple[object, object, object]]:
    patient = ox.NamedNode("urn:example:patient")
    facts: list[tuple[object, object, object]] = [(patient, TYPE, ox.NamedNode(MKG + "Patient"))]
    for drug in draw(st.lists(st.sampled_from(DRUGS), max_size=8, unique=True)):
        facts.append((patient, draw(st.sampled_from(PREDICATES)), drug))
    for cls in draw(st.lists(st.sampled_from(SITUATIONS), max_size=3, unique=True)):
        facts.append((patient, TYPE, cls))
    for prop in draw(st.lists(st.sampled_from(BOOLEAN), max_size=3, unique=True)):
        facts.append((patient, prop, ox.Literal(draw(st.sampled_from(["true", "false"])),
                                                datatype=ox.NamedNode(str(XSD.boolean)))))
    facts.append((patient, ox.NamedNode(MKG + "priorLineCount"),
                  ox.Literal(str(draw(st.integers(0, 3))), datatype=ox.NamedNode(str(XSD.integer)))))
    for i, (prop, inner) in enumerate(draw(st.lists(st.sampled_from(
            [("relapse", "kind"), ("relapse", "tempo"), ("cytogenetics", "finding")]), max_size=3))):
        node = ox.BlankNode(f"n{i}")
        facts.append((patient, ox.NamedNode(MKG + prop), node))
        facts.append((node, ox.NamedNode(MKG + inner), draw(st.sampled_from(VALUES))))
    return facts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patient_facts())
def test_generated_facts_are_classified_as_reasonable_classifies_them(facts) -> None:
    tbox = knowledge_template().tbox
    compiled = knowledge_template().classifier.classify(facts)
    assert sorted(map(str, compiled)) == sorted(map(str, classify_with_reasonable(tbox, facts)))


def test_a_bare_patient_is_only_an_owl_thing() -> None:
    found = knowledge_template().classifier.classify([(X, TYPE, ox.NamedNode(MKG + "Patient"))])
    assert found == [(X, ox.NamedNode(str(OWL.Thing)))]


def test_the_classifier_survives_pickling_after_use() -> None:
    import pickle

    classifier = knowledge_template().classifier
    facts = [(X, TYPE, ox.NamedNode(MKG + "Patient")),
             (X, ox.NamedNode(MKG + "refractoryTo"), ox.NamedNode(MKG + "drug/lenalidomide"))]
    before = classifier.classify(facts)
    assert pickle.loads(pickle.dumps(classifier)).classify(facts) == before
