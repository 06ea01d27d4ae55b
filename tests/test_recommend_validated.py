"""Validation beside reasoning: the report decides, the recommendation is the engine's own."""

from __future__ import annotations

import pytest

from myeloma_kg.patient import PatientDocument
from myeloma_kg.recommend import recommend_validated
from myeloma_kg.validate import EXAMPLES_DIR, validate

VALID = {"id": "pt-rv-1", "assessmentDate": "2026-01-01", "lines": [
    {"number": 1, "drugs": ["lenalidomide", "dexamethasone"], "start": "2024-01-01", "bestResponse": "PR",
     "progression": "2025-12-01", "progressionOnTherapy": True}]}


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_valid_patient_gets_the_engines_recommendation(engine, threads: str, monkeypatch) -> None:
    monkeypatch.setenv("MYELOMA_KG_THREADS", threads)
    report, rec = recommend_validated(EXAMPLES_DIR / "pt-017.yaml", engine=engine)
    assert report.conforms and rec is not None
    doc = PatientDocument.from_dict(dict(VALID))
    report, rec = recommend_validated(doc, engine=engine)
    assert report.conforms and rec is not None
    assert rec.to_dict() == engine.run([doc])[0][0].to_dict()


@pytest.mark.parametrize("threads", ["1", "2"])
def test_an_invalid_patient_gets_its_report_and_no_recommendation(engine, threads: str, monkeypatch) -> None:
    monkeypatch.setenv("MYELOMA_KG_THREADS", threads)
    bad = dict(VALID, lines=[dict(VALID["lines"][0], start="2026-06-01")])  # starts after its progression
    doc = PatientDocument.from_dict(bad)
    expected = validate(PatientDocument.from_dict(bad))
    assert not expected.conforms
    report, rec = recommend_validated(doc, engine=engine)
    assert rec is None and [str(v) for v in report.violations] == [str(v) for v in expected.violations]


def test_an_engine_failure_on_an_invalid_patient_is_left_to_the_report(engine, monkeypatch) -> None:
    monkeypatch.setenv("MYELOMA_KG_THREADS", "2")

    def broken(*args, **kwargs):
        raise RuntimeError("the engine could not read this document")

    monkeypatch.setattr(engine, "run", broken)
    bad = dict(VALID, lines=[dict(VALID["lines"][0], start="2026-06-01")])
    report, rec = recommend_validated(PatientDocument.from_dict(bad), engine=engine)
    assert not report.conforms and rec is None
    with pytest.raises(RuntimeError):  # a conforming document's failure is not hidden
        recommend_validated(PatientDocument.from_dict(dict(VALID)), engine=engine)
