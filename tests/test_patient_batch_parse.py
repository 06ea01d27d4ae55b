"""Many documents converted at once (``PatientDocument.from_raws``) give what ``from_raw`` gives one by one.

The plain documents of a batch are parsed as the named graphs of one JSON-LD document (the context is
processed once); documents that name blank nodes of their own, or a batch the parser rejects, go one by one.
Every outcome keeps its place: a document, or the error ``from_raw`` raises for it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_patient_parsing import _documents, _triples

import myeloma_kg.patient as patient_module
from myeloma_kg.errors import MyelomaKGError, ParseError
from myeloma_kg.io import RawDocument
from myeloma_kg.patient import PatientDocument
from myeloma_kg.synth import patient as synthetic_patient


def _raw(data: Any, position: int = 1) -> RawDocument:
    return RawDocument(source="batch.jsonl", position=position, data=data)


def _one_by_one(raw: RawDocument) -> PatientDocument | tuple[str, str]:
    try:
        return PatientDocument.from_raw(raw)
    except MyelomaKGError as exc:
        return type(exc).__name__, str(exc)


def _assert_same(raws: list[RawDocument]) -> list[PatientDocument | MyelomaKGError]:
    batch = PatientDocument.from_raws(raws)
    assert len(batch) == len(raws)
    for raw, got in zip(raws, batch):
        expected = _one_by_one(raw)
        if isinstance(expected, tuple):
            assert isinstance(got, MyelomaKGError), f"{raw.position}: the batch converted what from_raw rejects"
            assert (type(got).__name__, str(got)) == expected
            continue
        assert isinstance(got, PatientDocument), f"{raw.position}: {got}"
        assert (got.id, got.source, got.position, got.data) == (expected.id, expected.source, expected.position,
                                                                expected.data)
        assert all(q.graph_name == patient_module.ox.DefaultGraph() for q in got.quads)
        assert _triples(got) == _triples(expected)
    return batch


@pytest.fixture
def combined_parses(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each call of the combined parser succeeded."""
    calls: list[bool] = []
    real = patient_module._parse_many_with_oxigraph

    def counting(spelled: list[dict[str, Any]], labels: int) -> Any:
        out = real(spelled, labels)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(patient_module, "_parse_many_with_oxigraph", counting)
    return calls


def test_every_test_document_in_one_batch(combined_parses: list[bool]) -> None:
    raws = [_raw(data, i) for i, data in enumerate(_documents(), start=1)]
    _assert_same(raws)
    assert combined_parses == [True], "the documents as people write them are parsed together"


def test_a_synthetic_cohort_with_invalid_documents(combined_parses: list[bool]) -> None:
    raws = [_raw(json.loads(json.dumps(synthetic_patient(3, i, invalid_share=0.5))), i) for i in range(120)]
    batch = _assert_same(raws)
    assert combined_parses == [True]
    assert sum(isinstance(d, PatientDocument) for d in batch) > 60


def test_errors_keep_their_place() -> None:
    good = synthetic_patient(1, 0)
    raws = [
        _raw(good, 1),
        RawDocument(source="batch.jsonl", position=2, error=ParseError("malformed JSON", source="batch.jsonl#2")),
        _raw({"assessmentDate": "2026-01-01"}, 3),  # no id
        _raw(["not", "a", "mapping"], 4),  # type: ignore[arg-type]
        _raw({"id": 3.5}, 5),  # an id that is not a string
        _raw(synthetic_patient(1, 1), 6),
    ]
    batch = _assert_same(raws)
    assert [type(d).__name__ for d in batch] == ["PatientDocument", "ParseError", "FieldTypeError",
                                                 "FieldTypeError", "FieldTypeError", "PatientDocument"]


def test_documents_naming_their_own_blank_nodes_keep_their_own_nodes(combined_parses: list[bool]) -> None:
    # Two documents using the same label: parsed as one JSON-LD document they would share the node. The
    # pre-check leaves the nested id out (an unknown field), so each document keeps a node of its own.
    first = {**synthetic_patient(1, 2), "cytogenetics": {"id": "_:shared", "tested": "2020-01-01",
                                                         "findings": ["t(4;14)"]}}
    second = {**synthetic_patient(1, 3), "cytogenetics": {"id": "_:shared", "tested": "2021-01-01",
                                                          "findings": ["del(17p)"]}}
    batch = _assert_same([_raw(first, 1), _raw(second, 2)])
    findings = [sorted(str(o) for _, p, o in doc.graph if str(p).endswith("/finding")) for doc in batch]
    assert [[f.rsplit("/", 1)[-1] for f in found] for found in findings] == [["T4_14"], ["Del17p"]]


def test_the_combined_parser_refuses_documents_sharing_a_blank_node_label() -> None:
    # the guard behind the batch parser: only the labels _label_nodes made, unique to a document, may appear
    spelled = [{"id": f"urn:x:p{k}", "cytogenetics": {"@id": "_:shared", "tested": "2020-01-01"}} for k in (1, 2)]
    assert patient_module._parse_many_with_oxigraph(spelled, 0) is None


def test_a_batch_the_combined_parser_rejects_is_converted_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patient_module, "_parse_many_with_oxigraph", lambda spelled, labels: None)
    _assert_same([_raw(synthetic_patient(2, i), i) for i in range(10)])


def test_an_empty_batch() -> None:
    assert PatientDocument.from_raws([]) == []


def test_literals_that_look_like_line_ends_or_graph_names_stay_in_their_document(
        combined_parses: list[bool]) -> None:
    # The combined parse moves each document's quads out of its named graph through N-Quads text: a literal
    # holding a Unicode line separator, quotes, a backslash or the text of another document's graph name
    # must neither split a line nor move a triple to another document.
    tricky = ["a\u2028b", "c\x85d\u2029e", 'say "x" \\ y', " <urn:x-myeloma-kg:document:0> .",
              "<urn:x-myeloma-kg:document:1> ."]
    raws = [_raw({**synthetic_patient(4, i), "ecog": text}, i + 1) for i, text in enumerate(tricky)]
    batch = _assert_same(raws)
    assert combined_parses == [True]
    for doc, text in zip(batch, tricky):
        assert text in {q.object.value for q in doc.quads}  # type: ignore[union-attr]
