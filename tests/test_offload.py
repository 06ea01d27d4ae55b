"""Validation in a helper process (myeloma_kg.offload): the same reports as in the calling process, and a
caller that never depends on the helper being there."""

from __future__ import annotations

import os

import pytest

from myeloma_kg import offload
from myeloma_kg.patient import PatientDocument
from myeloma_kg.recommend import recommend_validated
from myeloma_kg.synth import generate
from myeloma_kg.validate import validate

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the helper process needs pass_fds")

VALID = {"id": "pt-off-1", "assessmentDate": "2026-01-01", "lines": [
    {"number": 1, "drugs": ["lenalidomide", "dexamethasone"], "start": "2024-01-01", "bestResponse": "PR",
     "progression": "2025-12-01", "progressionOnTherapy": True}]}
INVALID = [
    dict(VALID, id="pt-off-dates", lines=[dict(VALID["lines"][0], start="2026-06-01")]),  # starts after progression
    dict(VALID, id="pt-off-drug", lines=[dict(VALID["lines"][0], drugs=["lenalidomid"])]),  # not a drug id
    dict(VALID, id="pt-off-finding", cytogenetics={"tested": "2025-12-01", "findings": ["del 17p"]}),
    dict(VALID, id="pt-off-response", lines=[dict(VALID["lines"][0], bestResponse="great")]),
]


def _summary(report) -> tuple:
    return (report.patient, report.source, report.position, report.conforms, report.error,
            [(v.path, v.message, v.severity, v.shape, v.constraint, v.value) for v in report.violations],
            [(v.path, v.message, v.severity, v.shape, v.constraint, v.value) for v in report.warnings])


@pytest.fixture
def helper(monkeypatch):
    monkeypatch.setenv("MYELOMA_KG_THREADS", "2")
    monkeypatch.delenv("MYELOMA_KG_VALIDATION_PROCESS", raising=False)
    process = offload.ValidationProcess()
    assert process.wait_ready(120), "the helper did not warm up"
    yield process
    process.stop()


def test_the_helper_gives_the_reports_of_the_calling_process(helper) -> None:
    documents = [dict(VALID)] + INVALID + list(generate(40, seed=5, invalid_share=0.25))
    sent = 0
    for data in documents:
        try:
            doc = PatientDocument.from_dict(data, source="cohort.jsonl", position=7)
        except Exception:  # noqa: BLE001, S112 -- a document that does not convert never reaches validation
            continue
        pending = helper.submit(doc)
        assert pending is not None
        sent += 1
        assert _summary(pending.result()) == _summary(validate(doc)), doc.id
    assert sent >= 35


def test_one_document_at_a_time_and_only_documents_written_as_mappings(helper) -> None:
    doc = PatientDocument.from_dict(dict(VALID))
    first = helper.submit(doc)
    assert first is not None
    assert helper.submit(doc) is None  # busy: the caller validates this one itself
    assert first.result().conforms
    assert helper.submit(doc) is not None and helper._reply() is not None  # free again
    from_graph = PatientDocument.from_graph(doc.graph)  # no mapping to send
    assert helper.submit(from_graph) is None


def test_a_helper_that_dies_is_replaced_by_validation_in_the_caller(helper) -> None:
    doc = PatientDocument.from_dict(INVALID[0])
    helper._process.kill()
    helper._process.wait()
    pending = helper.submit(doc)
    report = pending.result() if pending is not None else validate(doc)
    assert _summary(report) == _summary(validate(doc))
    assert not helper.alive and helper.submit(doc) is None


def test_recommend_validated_moves_validation_to_the_helper_from_the_second_call(engine, monkeypatch) -> None:
    monkeypatch.setenv("MYELOMA_KG_THREADS", "2")
    monkeypatch.delenv("MYELOMA_KG_VALIDATION_PROCESS", raising=False)
    offload.stop_helper()
    try:
        recommend_validated(PatientDocument.from_dict(dict(VALID)), engine=engine)
        assert offload._state["helper"] is None  # one call: a one-shot command starts nothing
        recommend_validated(PatientDocument.from_dict(dict(VALID)), engine=engine)
        started = offload._state["helper"]
        assert started is not None and started.wait_ready(120)
        sent: list[str] = []
        original = offload.ValidationProcess.submit

        def spying(self, doc):
            pending = original(self, doc)
            if pending is not None:
                sent.append(doc.id)
            return pending

        monkeypatch.setattr(offload.ValidationProcess, "submit", spying)
        good = PatientDocument.from_dict(dict(VALID))
        report, rec = recommend_validated(good, engine=engine)
        assert report.conforms and rec is not None
        assert rec.to_dict() == engine.run([PatientDocument.from_dict(dict(VALID))])[0][0].to_dict()
        report, rec = recommend_validated(PatientDocument.from_dict(INVALID[1]), engine=engine)
        assert rec is None and _summary(report) == _summary(validate(PatientDocument.from_dict(INVALID[1])))
        assert sent == ["pt-off-1", "pt-off-drug"]
    finally:
        offload.stop_helper()


@pytest.mark.parametrize("setting", [{"MYELOMA_KG_VALIDATION_PROCESS": "0"}, {"MYELOMA_KG_THREADS": "1"}])
def test_the_helper_can_be_turned_off(setting, monkeypatch) -> None:
    monkeypatch.setenv("MYELOMA_KG_THREADS", "2")
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    offload.stop_helper()
    assert not offload.enabled()
    assert offload.helper() is None and offload.helper() is None and offload._state["helper"] is None
