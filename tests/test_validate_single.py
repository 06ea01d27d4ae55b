"""validate() of one converted document takes the shared runs of validate_many() and gives exactly the report of
the engine's own run over the document's graph.

``validate(doc)`` settles a converted document with the shared runs over a batch of that document alone (one
long-lived pyrudof session and one long-lived pyoxigraph store per thread, no rdflib graph), and falls back to
the engine's own run (``_validate_alone``, the reference) whatever those cannot vouch for. Every test compares
``ValidationReport.to_dict()`` (violations and warnings with paths, messages, severities, shapes, constraints and
values, in order) of ``validate(doc)``, ``validate_many([doc])`` and the reference, on valid and invalid
documents, and checks that the fast path was taken (or the comparison would prove nothing).
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

import myeloma_kg.validate as validation
from myeloma_kg.errors import DataError
from myeloma_kg.io import read_documents
from myeloma_kg.patient import PatientDocument
from myeloma_kg.synth import generate
from myeloma_kg.validate import RUDOF_FALLBACKS, validate, validate_many

pytest.importorskip("pyrudof")

TESTS = Path(__file__).parent
SUFFIXES = {".yaml", ".yml", ".json", ".jsonl", ".ttl", ".nt", ".jsonld"}
BAD_INPUT = sorted(p for p in (TESTS / "bad_input").iterdir() if p.suffix in SUFFIXES)
VIGNETTES = sorted(TESTS.glob("end_to_end/vignettes/*/patient.yaml"))


def _raws(path: Path) -> list[Any]:
    try:
        return list(read_documents(path))
    except DataError:
        return []


def _docs_from_files() -> list[tuple[str, Any]]:
    """(label, raw document) for every document of tests/bad_input and the vignettes that converts."""
    out = []
    for path in BAD_INPUT + VIGNETTES:
        for raw in _raws(path):
            try:
                PatientDocument.from_raw(raw)
            except DataError:
                continue
            out.append((f"{path.name}#{raw.position}", raw))
    return out


def _reference_run() -> Any:
    """A validation run that never takes the shared runs (the engine's own run decides everything)."""
    return dataclasses.replace(validation._start(None, None), shared=False)


def _assert_single_is_reference(make: Any, label: str) -> dict[str, Any]:
    """validate(doc) == validate_many([doc]) == the reference, each on a freshly converted document; the
    fallback counter moves alike for validate() and the reference."""
    before = Counter(RUDOF_FALLBACKS)
    fast = validate(make()).to_dict()
    fast_fallbacks = Counter(RUDOF_FALLBACKS)
    fast_fallbacks.subtract(before)
    before = Counter(RUDOF_FALLBACKS)
    reference = validation._validate_alone(make()).to_dict()
    reference_fallbacks = Counter(RUDOF_FALLBACKS)
    reference_fallbacks.subtract(before)
    assert fast == reference, f"{label}: validate() differs from the engine's own run"
    assert validate_many([make()])[0].to_dict() == reference, f"{label}: validate_many([doc]) differs"
    assert +fast_fallbacks == +reference_fallbacks
    return fast


def test_synthetic_documents_valid_and_invalid() -> None:
    documents = [d for d in generate(120, 23, invalid_share=0.3) if d.get("id")]
    reports = [
        _assert_single_is_reference(lambda d=d: PatientDocument.from_dict(copy.deepcopy(d)), str(d["id"]))
        for d in documents
    ]
    assert sum(r["conforms"] for r in reports) > 40
    assert sum(not r["conforms"] for r in reports) > 20
    assert sum(bool(r["warnings"]) for r in reports) > 5


def test_every_bad_input_and_vignette_document() -> None:
    found = 0
    for label, raw in _docs_from_files():
        report = _assert_single_is_reference(lambda raw=raw: PatientDocument.from_raw(raw), label)
        found += not report["conforms"]
    assert found > 20


def test_mappings_and_raw_documents() -> None:
    """Mappings (pre-check issues included) go through the same fast path for their SHACL part."""
    documents = [d for d in generate(40, 29, invalid_share=0.5) if d.get("id")]
    documents.append({"id": "pt-9", "assessmentDate": "2026-11-01", "age": "sixty"})
    documents.append({"assessmentDate": "2026-11-01", "lines": [{"number": 1, "regimen": "vrdd"}]})  # no id
    documents.append({"id": "pt-8", "assessmentDate": None, "lines": "VRd", "age": True})
    for data in documents:
        assert validate(copy.deepcopy(data)).to_dict() == validation._validate_alone(copy.deepcopy(data)).to_dict()
    for label, raw in _docs_from_files():
        if raw.data is not None:
            reference = validation._validate_data(
                copy.deepcopy(raw.data), _reference_run(), source=raw.source, position=raw.position
            )
            assert validation.validate_raw(raw).to_dict() == reference.to_dict(), label


def test_the_fast_path_is_taken_and_leaves_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Documents are settled without the engine's own run and without their rdflib graph; the thread's store
    is back to the knowledge base's types after each document and is renewed after a number of documents."""
    engine_runs = []
    engine_results = validation._engine_results
    monkeypatch.setattr(validation, "_engine_results", lambda *a: engine_runs.append(1) or engine_results(*a))
    documents = [d for d in generate(validation._SINGLE_STORE_RENEWAL + 20, 31, invalid_share=0.2) if d.get("id")]
    types = validation._start(None, None).types
    stores = set()
    graphs_built = findings = 0
    for data in documents:
        doc = PatientDocument.from_dict(copy.deepcopy(data))
        findings += bool(validate(doc).results)
        graphs_built += doc.unconverted_quads is None
        store = validation._single_store(types)
        assert len(store) == len(types.graph)
        stores.add(id(store))
    assert engine_runs == [] and graphs_built == 0
    assert findings > 10
    assert len(stores) >= 2


def test_other_engines_never_take_the_fast_path() -> None:
    data = next(iter(generate(1, 37)))
    doc = PatientDocument.from_dict(copy.deepcopy(data))
    report = validate(doc, engine="oxigraph")
    assert doc.unconverted_quads is None  # the engine read the graph
    assert report.to_dict() == validate(PatientDocument.from_dict(copy.deepcopy(data))).to_dict()


def test_a_document_whose_graph_is_already_built() -> None:
    for data in [d for d in generate(10, 41, invalid_share=0.5) if d.get("id")]:
        doc = PatientDocument.from_dict(copy.deepcopy(data))
        _ = doc.graph
        assert validate(doc).to_dict() == validation._validate_alone(PatientDocument.from_dict(copy.deepcopy(data))).to_dict()


def test_plain_dates_are_read_as_rdflib_reads_them() -> None:
    """The shortcut for YYYY-MM-DD dates gives the N-Triples and store forms rdflib's reading gives."""
    import pyoxigraph as ox

    rng = random.Random(5)
    texts = ["2021-02-28", "2021-02-29", "2020-02-29", "1900-02-29", "0001-01-01", "0000-01-01", "9999-12-31",
             "2021-13-01", "2021-00-10", "2021-01-32", "2021-2-3", "2021-02-03Z", "+2021-02-03", "２０２１-02-03"]
    texts += [f"{rng.randint(0, 9999):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}" for _ in range(3000)]
    shortcut = 0
    for text in texts:
        term = ox.Literal(text, datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#date"))
        rdf = validation._to_rdf(term)
        if validation._plain_date(text):
            shortcut += 1
            assert validation._well_formed(rdf)
            assert (validation._nt_term(rdf), validation._to_ox(rdf)) == (f'"{text}"^^<{validation._XSD_DATE}>', term)
        validation._literal_cache.pop(term, None)
        text_form, store_form, _ = validation._literal_forms(term)
        assert text_form == validation._nt_term(rdf) and store_form == validation._to_ox(rdf)
    assert shortcut > 1000


def test_documents_from_yaml_cases() -> None:
    cases = sorted(TESTS.glob("cases/*/*.yaml"))[::7]
    for path in cases:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))["patient"]
        try:
            PatientDocument.from_dict(copy.deepcopy(data))
        except DataError:
            continue
        _assert_single_is_reference(lambda data=data: PatientDocument.from_dict(copy.deepcopy(data)), str(path))


def test_the_pyrudof_session_is_renewed_by_documents_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session serves _SESSION_RENEWAL documents, counted one by one: a batch call counts all its documents,
    so single documents and cohort chunks renew after as many documents."""
    monkeypatch.setattr(validation, "_SESSION_RENEWAL", 10)
    monkeypatch.setattr(validation._local, "rudof", {}, raising=False)
    plan = validation._rudof_plan()
    types = validation._start(None, None).types
    first = validation._rudof_session(plan, types)  # built for its first document
    for _ in range(9):  # documents 2-10
        assert validation._rudof_session(plan, types) is first
    second = validation._rudof_session(plan, types)  # the 11th document: a new session
    assert second is not first
    assert validation._rudof_session(plan, types, 9) is second  # a batch of 9: 10 documents in all
    assert validation._rudof_session(plan, types, 1) is not second
    third = validation._rudof_session(plan, types, 50)  # a chunk larger than the limit counts whole
    assert validation._rudof_session(plan, types, 1) is not third
