"""Patient documents are converted by pyoxigraph's JSON-LD parser, with rdflib's as the reference.

The fast parser must give exactly the triples rdflib gives (same terms, same lexical forms, same node
labels), or hand the document to rdflib. Checked on every patient document of the test suite, on a
synthetic cohort with invalid documents, and on generated and mutated documents.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from rdflib import BNode

import myeloma_kg.patient as patient_module
from myeloma_kg.errors import DataError
from myeloma_kg.io import _jsonable, read_documents
from myeloma_kg.patient import NODE_PATHS, PatientDocument
from myeloma_kg.synth import patient as synthetic_patient
from test_validate_properties import SETTINGS, mutated_documents, random_documents

TESTS = Path(__file__).parent


def _triples(doc: PatientDocument) -> Any:
    """The document's triples, labelled nodes (tied to field paths) named by their label without its
    random per-call prefix, unlabelled blank nodes (only in documents rdflib converts) all alike."""
    labels = list(doc.extra.get(NODE_PATHS, {}))
    prefix = labels[0][:13] if labels else None

    def norm(term: Any) -> Any:
        if isinstance(term, BNode):
            return BNode(str(term)[len(prefix):] if prefix and str(term).startswith(prefix) else "unlabelled")
        return term

    return Counter(tuple(norm(t) for t in triple) for triple in doc.graph)


def _reference(data: Any, monkeypatch: pytest.MonkeyPatch) -> PatientDocument | str:
    with monkeypatch.context() as m:
        m.setattr(patient_module, "_parse_with_oxigraph", lambda doc: None)
        try:
            return PatientDocument.from_dict(data)
        except DataError as exc:
            return type(exc).__name__


def _compare(data: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """'fast' when pyoxigraph converted the document (and agreed), 'rdflib' when it was handed over."""
    try:
        doc = PatientDocument.from_dict(data)
    except DataError as exc:
        assert _reference(data, monkeypatch) == type(exc).__name__
        return "error"
    fast = doc.unconverted_quads is not None
    reference = _reference(data, monkeypatch)
    assert isinstance(reference, PatientDocument), f"rdflib rejects what the fast parser accepted: {reference}"
    assert _triples(doc) == _triples(reference)
    return "fast" if fast else "rdflib"


def _documents() -> list[Any]:
    docs: list[Any] = []
    for path in sorted((TESTS / "end_to_end").rglob("patient.yaml")):
        docs.extend(raw.data for raw in read_documents(path) if raw.data is not None)
    for path in sorted((TESTS / "cases").rglob("*.yaml")):
        case = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(case, dict) and isinstance(case.get("patient"), dict):
            docs.append(_jsonable(case["patient"]))
    return docs


def test_fast_parser_agrees_with_rdflib_on_every_test_document(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _documents()
    assert len(docs) > 200
    used_fast = 0
    for data in docs:
        doc = PatientDocument.from_dict(data)
        used_fast += doc.unconverted_quads is not None
        assert _compare(data, monkeypatch) in ("fast", "rdflib")
    assert used_fast == len(docs), "every document as people write them takes the fast parser"


def test_fast_parser_agrees_on_a_synthetic_cohort_with_invalid_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = [_compare(json.loads(json.dumps(synthetic_patient(1, i, invalid_share=0.5))), monkeypatch)
                for i in range(150)]
    assert outcomes.count("fast") > 100


def test_decimals_keep_the_spelling_of_the_document() -> None:
    doc = PatientDocument.from_dict({"id": "p", "assessmentDate": "2026-01-01", "lvef": 45.5,
                                     "creatinineClearance": 70.0, "age": 70, "lines": []})
    assert doc.unconverted_quads is not None
    values = {str(p).rsplit("/", 1)[-1]: o for _, p, o in doc.graph}
    assert str(values["lvef"]) == "45.5" and values["lvef"].datatype.endswith("#double")
    assert str(values["creatinineClearance"]) == "70.0"
    assert str(values["age"]) == "70" and values["age"].datatype.endswith("#integer")


@pytest.mark.parametrize("odd", [
    {"frailty": "t(11:14)"},  # pyoxigraph would resolve it against the working directory
    {"lines": [{"id": "line-1", "number": 1}]},  # a relative id inside the document
    {"assessmentDate": 20260101.5},  # a number where a date belongs
    {"age": 10**22},
])
def test_values_the_parsers_could_spell_differently_go_to_rdflib(odd: dict[str, Any],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"id": "p", "assessmentDate": "2026-01-01", "lines": [], **odd}
    assert patient_module._parse_with_oxigraph({**data, "@context": patient_module.patient_context()}) is None
    _compare(data, monkeypatch)


@SETTINGS
@given(st.one_of(mutated_documents(), random_documents))
def test_fast_parser_agrees_with_rdflib_on_odd_documents(document: Any) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        if isinstance(document, dict):
            _compare(document, monkeypatch)


def test_the_fast_parser_reads_no_property_scoped_context() -> None:
    """Scoped contexts cost pyoxigraph a copy of the active context at every value of their term: their
    codes are spelled out as IRIs before parsing, and the context pyoxigraph reads has none left."""
    keys = patient_module._context_keys()
    assert keys.scoped, "the patient context's scoped contexts can be spelled out"
    assert not [k for k, d in keys.parse_context.items() if isinstance(d, dict) and "@context" in d]
    assert set(keys.scoped) == {k for k, d in patient_module.patient_context().items()
                                if isinstance(d, dict) and "@context" in d}


_LINE = {"number": 1, "regimen": "VRd", "start": "2024-01-01"}


@pytest.mark.parametrize(("codes", "expected"), [
    ({"frailty": "fit"}, "fast"),  # a term of the key's scoped context
    ({"frailty": "Patient"}, "fast"),  # a term of the outer context: its IRI, not the scoped vocabulary's
    ({"frailty": "CR"}, "fast"),  # a term of another key's scoped context: this key's vocabulary
    ({"cytogenetics": {"findings": ["t(11;14)", "del(17p)", "gain(1q)", "hyperdiploid"]}}, "fast"),
    ({"lines": [{**_LINE, "bestResponse": "CR", "drugs": ["lenalidomide", "fit", "VGPR"]}]}, "fast"),
    # nested scopes: the drug of an entry of drugs expands under both scoped contexts
    ({"lines": [{**_LINE, "drugs": [{"drug": "daratumumab", "start": "2024-01-01"}, {"drug": "CR"}]}]}, "fast"),
    # not a term (the drug vocabulary would expand it): the pre-check leaves the unknown field out of the graph
    ({"lines": [{**_LINE, "drugs": [{"drug": "daratumumab", "doseMg": 16}]}]}, "fast"),
    # a keyword alias: the pre-check reports it (a key of the document format, not a drug id) and leaves it out
    ({"lines": [{**_LINE, "drugs": [{"drug": "id"}]}]}, "fast"),
    ({"lines": [{**_LINE, "stoppedForToxicity": ["bortezomib"], "refractoryTo": ["Patient", "x"]}]}, "fast"),
])
def test_codes_under_scoped_contexts_expand_as_rdflib_expands_them(codes: dict[str, Any], expected: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"id": "p", "assessmentDate": "2026-01-01", "lines": [], **codes}
    assert _compare(data, monkeypatch) == expected
