"""validate_many() gives exactly the reports of validate() one document at a time, only faster.

``validate_many(docs)`` validates a batch with one pyrudof run and one pyoxigraph store (see the comment
above ``VALIDATE_MANY_STATS`` in myeloma_kg/validate.py for why that is sound) and sends to ``validate()``
whatever the shared runs cannot vouch for. Every test compares ``ValidationReport.to_dict()`` (violations and
warnings with paths, messages, severities, shapes, constraints and values, in order; ``seconds`` is left
out, as to_dict() does) with ``[validate(d) for d in docs]`` as the engine's own run over each document's graph
gives them (``_validate_alone``), and checks through ``VALIDATE_MANY_STATS``
that the shared runs did take the documents they should (or the comparison would prove nothing).

Each side gets its own freshly converted documents: the engine's own run builds a document's rdflib graph, while
validate_many() works from the pyoxigraph quads as long as that graph is not built.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import URIRef
from strategies import patient_documents
from test_validate_engines import PATIENT, PREFIXES, TURTLE_EDGE_CASES

import myeloma_kg.validate as validation
from myeloma_kg.errors import DataError
from myeloma_kg.io import read_documents
from myeloma_kg.patient import PatientDocument, patient_iri
from myeloma_kg.synth import DEFECTS, generate
from myeloma_kg.synth import patient as synthetic_patient
from myeloma_kg.validate import (
    RUDOF_FALLBACKS,
    VALIDATE_MANY_STATS,
    validate_many,
)

pytest.importorskip("pyrudof")

TESTS = Path(__file__).parent
SUFFIXES = {".yaml", ".yml", ".json", ".jsonl", ".ttl", ".nt", ".jsonld"}
BAD_INPUT = sorted(p for p in (TESTS / "bad_input").iterdir() if p.suffix in SUFFIXES)
VIGNETTES = sorted(TESTS.glob("end_to_end/vignettes/*/patient.yaml"))
CASES = sorted(TESTS.glob("cases/*/*.yaml"))

Factory = Callable[[], PatientDocument]


# ------------------------------------------------------------------------------------------ helpers


def _file_factories(path: Path) -> list[Factory]:
    """One factory per document of the file that converts (documents that do not are not PatientDocuments)."""
    out: list[Factory] = []
    try:
        raws = list(read_documents(path))
    except DataError:  # a file that does not parse
        return out
    for raw in raws:
        try:
            PatientDocument.from_raw(raw)
        except DataError:
            continue
        out.append(lambda raw=raw: PatientDocument.from_raw(raw))
    return out


def _dict_factory(data: dict[str, Any], source: str = "<input>", position: int = 1) -> Factory | None:
    try:
        PatientDocument.from_dict(copy.deepcopy(data), source=source, position=position)
    except DataError:
        return None
    return lambda: PatientDocument.from_dict(copy.deepcopy(data), source=source, position=position)


def _turtle_factory(name: str, tmp_path: Path) -> list[Factory]:
    path = tmp_path / f"{name}.ttl"
    path.write_text(PREFIXES + PATIENT + "    " + TURTLE_EDGE_CASES[name] + "\n", encoding="utf-8")
    return _file_factories(path)


def _compare(factories: list[Factory], **kwargs: Any) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Assert validate_many() == [validate()] on fresh documents; return the stats delta and the reports.

    The single side is validate() with the engine's own run over each document's graph (``_validate_alone``):
    validate() itself takes the shared runs for one document (tests/test_validate_single.py), which would make
    the comparison circular. RUDOF_FALLBACKS must move by the same amounts on both sides: validate_many()
    counts a fallback exactly when validate() would.
    """
    before = Counter(RUDOF_FALLBACKS)
    single = [validation._validate_alone(make(), **kwargs).to_dict() for make in factories]
    single_fallbacks = Counter(RUDOF_FALLBACKS)
    single_fallbacks.subtract(before)
    stats = Counter(VALIDATE_MANY_STATS)
    before = Counter(RUDOF_FALLBACKS)
    many_reports = validate_many([make() for make in factories], **kwargs)
    many = [r.to_dict() for r in many_reports]
    many_fallbacks = Counter(RUDOF_FALLBACKS)
    many_fallbacks.subtract(before)
    delta = Counter(VALIDATE_MANY_STATS)
    delta.subtract(stats)
    assert len(many) == len(single)
    for i, (a, b) in enumerate(zip(many, single)):
        assert a == b, f"document {i} ({a['patient']}, {a['source']}): validate_many differs from validate"
    assert +many_fallbacks == +single_fallbacks
    assert all(r.seconds >= 0 for r in many_reports)
    return delta, many


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i: i + size] for i in range(0, len(items), size)]


# ------------------------------------------------------------------------------------------ (a) every document under tests/


def _corpus(tmp_path: Path) -> list[Factory]:
    factories: list[Factory] = []
    for path in BAD_INPUT + VIGNETTES:
        factories += _file_factories(path)
    for path in CASES:
        made = _dict_factory(yaml.safe_load(path.read_text(encoding="utf-8"))["patient"], str(path))
        if made is not None:
            factories.append(made)
    for name in TURTLE_EDGE_CASES:
        factories += _turtle_factory(name, tmp_path)
    return factories


def test_every_test_document_in_mixed_batches(tmp_path: Path) -> None:
    factories = _corpus(tmp_path)
    assert len(factories) > 200
    random.Random(11).shuffle(factories)
    total: Counter[str] = Counter()
    for batch in _batches(factories, 25):
        delta, _ = _compare(batch)
        total.update(delta)
    assert total["batched"] + total["single"] == len(factories)
    # Most of the corpus takes the shared runs, findings included; pre-check failures and Turtle oddities do not.
    assert total["batched"] > 0.6 * len(factories), total
    assert total["batched_findings"] > 20, total
    assert total["single"] > 10, total


def test_the_whole_corpus_as_one_batch(tmp_path: Path) -> None:
    factories = _corpus(tmp_path)
    delta, _ = _compare(factories)
    assert delta["batched"] > 0.6 * len(factories)


def test_bad_input_documents_each_alone_and_together() -> None:
    factories = [f for path in BAD_INPUT for f in _file_factories(path)]
    for make in factories:
        _compare([make])
    delta, reports = _compare(factories)
    assert delta["batched_findings"] > 5  # documents with SHACL findings reported from the shared runs
    assert sum(not r["conforms"] for r in reports) > 20


def test_turtle_edge_cases_fall_back_as_validate_does(tmp_path: Path) -> None:
    """Non-finite and inexact numbers make validate() fall back to pySHACL; validate_many() sends those
    documents to validate(), so that RUDOF_FALLBACKS moves exactly as it would (checked by _compare)."""
    factories = [f for name in TURTLE_EDGE_CASES for f in _turtle_factory(name, tmp_path)]
    factories += [f for path in VIGNETTES[:3] for f in _file_factories(path)]
    before = sum(RUDOF_FALLBACKS.values())
    delta, _ = _compare(factories)
    assert sum(RUDOF_FALLBACKS.values()) > before
    assert delta["single"] >= 2 and delta["batched"] >= 3


# ------------------------------------------------------------------------------------------ (b) a synthetic cohort


def test_synthetic_cohort_with_invalid_documents() -> None:
    """As `myeloma-kg synth --n 300 --seed 3 --invalid-share 0.2`, in batches of 50."""
    documents = list(generate(300, 3, invalid_share=0.2))
    factories = [f for i, d in enumerate(documents) if (f := _dict_factory(d, "synth", i + 1)) is not None]
    assert len(factories) > 280
    total: Counter[str] = Counter()
    conforming = 0
    for batch in _batches(factories, 50):
        delta, reports = _compare(batch)
        total.update(delta)
        conforming += sum(r["conforms"] for r in reports)
    assert 180 < conforming < 270
    assert total["batched"] > 0.75 * len(factories), total
    assert total["batched_findings"] > 40, total
    assert total["single"] > 0, total  # documents with pre-check issues


def test_valid_documents_take_the_shared_runs() -> None:
    factories = [f for i, d in enumerate(generate(60, 5)) if (f := _dict_factory(d, "synth", i + 1)) is not None]
    delta, reports = _compare(factories)
    assert all(r["conforms"] for r in reports)
    assert delta["batched"] == len(factories) and delta["single"] == 0


def test_small_and_uneven_batches_share_stores() -> None:
    factories = [f for i, d in enumerate(generate(40, 9, 0.3)) if (f := _dict_factory(d, "synth", i + 1)) is not None]
    for size in (1, 2, 7, 30, 3):
        for batch in _batches(factories, size)[:3]:
            _compare(batch)


# ------------------------------------------------------------------------------------------ (c) documents that must not be merged


def _synth(i: int, seed: int = 13) -> dict[str, Any]:
    return synthetic_patient(seed, i)


def test_duplicate_patient_ids_in_one_batch() -> None:
    base = list(generate(6, 21))
    twin = copy.deepcopy(base[1])
    twin["lines"][0]["bestResponse"] = "XR"  # same id, different (invalid) content
    same = copy.deepcopy(base[2])  # same id, same content
    data = [*base, twin, same]
    factories = [f for i, d in enumerate(data) if (f := _dict_factory(d, "dup", i + 1)) is not None]
    delta, reports = _compare(factories)
    ids = [r["patient"] for r in reports]
    assert ids.count(base[1]["id"]) == 2 and ids.count(base[2]["id"]) == 2
    assert delta["single"] >= 4  # both copies of each duplicated id go through validate()
    assert delta["batched"] >= 4
    assert any(not r["conforms"] for r in reports if r["patient"] == base[1]["id"])


def test_the_same_document_object_twice() -> None:
    doc = PatientDocument.from_dict(copy.deepcopy(_synth(3)))
    other = PatientDocument.from_dict(copy.deepcopy(_synth(4)))
    single = [validation._validate_alone(PatientDocument.from_dict(copy.deepcopy(_synth(i)))).to_dict() for i in (3, 4, 3)]
    assert [r.to_dict() for r in validate_many([doc, other, doc])] == single


def test_documents_sharing_blank_nodes(tmp_path: Path) -> None:
    """A Turtle copy of a document under another patient id keeps its blank-node labels: the two documents
    must not share a data graph."""
    first = PatientDocument.from_dict(copy.deepcopy(_synth(5)))
    graph = first.graph
    old, new = URIRef(first.iri), URIRef(patient_iri("copy-of-first"))
    from rdflib import Graph, Literal

    from myeloma_kg.namespaces import MKG

    copied = Graph()
    for s, p, o in graph:
        if p == MKG.patientId:
            o = Literal("copy-of-first")
        copied.add((new if s == old else s, p, new if o == old else o))
    factories: list[Factory] = [
        lambda: PatientDocument.from_graph(graph),
        lambda: PatientDocument.from_graph(copied),
        *[f for i in (6, 7) if (f := _dict_factory(_synth(i))) is not None],
    ]
    delta, _ = _compare(factories)
    assert delta["single"] == 2 and delta["batched"] == 2


def test_documents_that_mention_each_other(tmp_path: Path) -> None:
    """A Turtle patient whose line is another patient's IRI, and one with triples about a drug: alone."""
    other = _synth(8)
    path = tmp_path / "links.ttl"
    path.write_text(
        PREFIXES + PATIENT + f"    mkg:hasLine <{patient_iri(other['id'])}> .\n", encoding="utf-8"
    )
    drug = tmp_path / "drug.ttl"
    drug.write_text(
        PREFIXES + PATIENT.replace("pt-ttl", "pt-drug") + "    mkg:hasLine [ mkg:lineNumber 1 ; mkg:drugs drug:newdrug ;"
        ' mkg:start "2021-01-01"^^xsd:date ; mkg:bestResponse mkg:PR ] .\n    drug:newdrug a mkg:Drug .\n',
        encoding="utf-8",
    )
    factories = _file_factories(path) + _file_factories(drug) + [f for f in [_dict_factory(other)] if f]
    delta, reports = _compare(factories)
    assert delta["single"] == 3, delta  # the linking pair, and the document that declares a drug
    assert len(reports) == 3


def test_a_result_about_a_node_two_documents_mention(tmp_path: Path) -> None:
    """Two Turtle patients name the same line IRI (without describing it): the shared run reports the line
    once, for a focus node neither document owns, so both documents go through validate()."""
    factories: list[Factory] = []
    for name in ("pt-a", "pt-b"):
        path = tmp_path / f"{name}.ttl"
        path.write_text(
            PREFIXES + PATIENT.replace("pt-ttl", name) + "    mkg:hasLine <https://w3id.org/myeloma-kg/line/shared> .\n",
            encoding="utf-8",
        )
        factories += _file_factories(path)
    factories += [f for f in (_dict_factory(_synth(i, 6)) for i in range(3)) if f is not None]
    delta, reports = _compare(factories)
    assert delta["single"] == 2 and delta["batched"] == 3
    assert all(any("lines[].number is missing" in v["message"] for v in r["violations"]) for r in reports[:2])


def test_other_engines_and_empty_input() -> None:
    assert validate_many([]) == []
    factories = [f for f in (_dict_factory(_synth(i, 2)) for i in range(3)) if f is not None]
    delta, _ = _compare(factories, engine="oxigraph")
    assert delta["single"] == 3 and delta["batched"] == 0
    with pytest.raises(ValueError, match="unknown validation engine"):
        validate_many([factories[0]()], engine="nope")


def test_non_document_inputs_are_validated_alone() -> None:
    data = _synth(9)
    reports = validate_many([copy.deepcopy(data), PatientDocument.from_dict(copy.deepcopy(data))])  # type: ignore[list-item]
    assert [r.to_dict() for r in reports] == [
        validation._validate_alone(copy.deepcopy(data)).to_dict(),
        validation._validate_alone(PatientDocument.from_dict(copy.deepcopy(data))).to_dict(),
    ]


def test_a_document_whose_graph_is_already_built() -> None:
    """Once ``doc.graph`` exists, validate_many() reads it rather than the quads (rdflib's reading of some
    literals, e.g. "yes"^^xsd:boolean, is only in the graph)."""
    factories = [f for f in (_dict_factory(_synth(i, 4)) for i in range(5)) if f is not None]
    docs = [make() for make in factories]
    for doc in docs[::2]:
        _ = doc.graph
    reports = validate_many(docs)
    assert [r.to_dict() for r in reports] == [validation._validate_alone(make()).to_dict() for make in factories]


# ------------------------------------------------------------------------------------------ conversions


def _fresh_docs() -> list[PatientDocument]:
    data = list(generate(40, 17, invalid_share=0.3))
    docs = [PatientDocument.from_dict(copy.deepcopy(d)) for d in data if d.get("id")]
    docs += [PatientDocument.from_dict(yaml.safe_load(p.read_text(encoding="utf-8"))) for p in VIGNETTES]
    return docs


def _lines(text: str) -> set[str]:
    return set(text.splitlines())


def test_ntriples_and_quads_from_quads_match_the_graph() -> None:
    """_doc_ntriples and _doc_ox_quads, read from a document's quads before its graph is built, give what
    validate() derives from the graph (N-Triples for pyrudof, quads for its pyoxigraph store)."""
    import pyoxigraph as ox

    checked = 0
    for doc in _fresh_docs():
        if validation._primary_quads(doc) is None:
            continue  # a document without quads (or with its graph): both paths read the graph
        checked += 1
        text, quads, view = validation._doc_ntriples(doc), validation._doc_ox_quads(doc), validation._doc_graph(doc)
        assert _lines(text) == _lines(validation._ntriples(doc.graph))
        assert set(quads) == set(validation._ox_patient_quads(doc.graph))
        assert all(q.graph_name == ox.DefaultGraph() for q in quads)
        assert set(view) == set(doc.graph) and len(view) == len(doc.graph)
        for subject in {s for s, _, _ in doc.graph}:
            assert list(view.predicate_objects(subject)) == list(doc.graph.predicate_objects(subject))
            for predicate in {p for p, _ in doc.graph.predicate_objects(subject)}:
                assert list(view.objects(subject, predicate)) == list(doc.graph.objects(subject, predicate))
                assert view.value(subject, predicate) == doc.graph.value(subject, predicate)
            assert (subject, None, None) in view
        assert (URIRef("urn:x"), None, None) not in view
    if not checked:
        pytest.skip("PatientDocument has no quads: every path reads the graph")


def test_literals_read_as_rdflib_reads_them() -> None:
    import pyoxigraph as ox

    xsd = "http://www.w3.org/2001/XMLSchema#"
    for value, datatype in [("007", "integer"), ("yes", "boolean"), ("2021-02-30", "date"), ("1.50", "decimal"),
                            ("70.7", "double"), ("2021-02-03T00:00:00", "date"), ("a \"b\"\n\\", "string")]:
        term = ox.Literal(value, datatype=ox.NamedNode(xsd + datatype))
        rdf = validation._to_rdf(term)
        if datatype == "string":
            from rdflib import Literal

            rdf = Literal(value)
        text, store_form, _ = validation._literal_forms(term)
        assert text == validation._nt_term(rdf)
        assert store_form == validation._to_ox(rdf)
    nan = ox.Literal("NaN", datatype=ox.NamedNode(xsd + "double"))
    with pytest.raises(validation._Unsupported):
        validation._ox_nt_term(nan)


def test_batch_queries_keep_the_constraints() -> None:
    plan, queries = validation._batch_plan()
    assert len(queries) == len(plan.sparql) > 20
    for check, query in zip(plan.sparql, queries):
        assert "GRAPH ?mkgValidateGraph {" in query
        assert check.query.split("WHERE {", 1)[1].strip()[:-1].strip() in query


@pytest.mark.parametrize("query", [
    "SELECT $this WHERE { $this ?p ?o } LIMIT 1",
    "SELECT $this (COUNT(?o) AS ?n) WHERE { $this ?p ?o } GROUP BY $this",
    "SELECT $this WHERE { GRAPH ?g { $this ?p ?o } }",
    "SELECT * WHERE { $this ?p ?o }",
    "SELECT $this WHERE { $this ?p ?o } VALUES ?o { 1 }",
])
def test_queries_the_batch_cannot_scope_are_refused(query: str) -> None:
    with pytest.raises(validation._Unsupported):
        validation._graph_query(query)


# ------------------------------------------------------------------------------------------ (d) generated documents


def _defective(doc: dict[str, Any], defect: str | None, seed: int) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    if defect is not None:
        DEFECTS[defect](doc, random.Random(seed))
    return doc


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(
    st.tuples(patient_documents(), st.one_of(st.none(), st.sampled_from(sorted(DEFECTS))), st.integers(0, 99)),
    min_size=1, max_size=6,
))
def test_generated_batches_equal_single_validation(items: list[tuple[dict[str, Any], str | None, int]]) -> None:
    data = [_defective(doc, defect, seed) for doc, defect, seed in items]
    factories = [f for i, d in enumerate(data) if (f := _dict_factory(d, "gen", i + 1)) is not None]
    if factories:
        _compare(factories)


def test_the_shared_store_gets_each_document_as_validate_puts_it_in_its_own() -> None:
    """The shared SPARQL store reads a document from N-Quads written while it is prepared (pyoxigraph's
    parser makes the quads: cheaper than ox.Quad()); they are the quads validate() would store."""
    import pyoxigraph as ox

    graph = ox.NamedNode("urn:x-test:graph")
    documents = [synthetic_patient(5, i, invalid_share=0.3) for i in range(120)]
    for path in BAD_INPUT:
        try:
            documents += [raw.data for raw in read_documents(path) if raw.data]
        except DataError:
            continue  # a file that does not read
    compared = 0
    for data in documents:
        try:
            doc = PatientDocument.from_dict(copy.deepcopy(data))
        except DataError:
            continue
        item = validation._doc_item(0, doc, doc.data, for_store=True)
        if item is None or item.store_lines is None:
            continue
        text = "".join(f"{line} {graph} .\n" for line in item.store_lines)
        assert list(ox.parse(text, format=ox.RdfFormat.N_QUADS)) == validation._doc_ox_quads(doc, graph)
        compared += 1
    assert compared > 100
