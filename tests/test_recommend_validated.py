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


# A code or id that is not IRI-safe as written ("del 17p") expands to an ill-formed IRI, which the JSON-LD
# processors drop without a word: the graph is made from the pre-checked copy, so that validation sees the
# value (and rejects it) and reasoning never goes on without it.
SPACED_FINDING = dict(VALID, id="pt-rv-spaced", cytogenetics={"tested": "2025-12-01", "findings": ["del 17p"]})


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_code_that_is_not_iri_safe_is_rejected_not_dropped(engine, threads: str, monkeypatch) -> None:
    monkeypatch.setenv("MYELOMA_KG_THREADS", threads)
    report, rec = recommend_validated(PatientDocument.from_dict(SPACED_FINDING), engine=engine)
    assert rec is None and not report.conforms
    assert [v.path for v in report.violations] == ["cytogenetics.findings[0]"]
    assert "Did you mean del(17p)?" in report.violations[0].message


def test_a_code_that_is_not_iri_safe_is_an_error_line_in_a_cohort_run() -> None:
    from myeloma_kg.batch import Item, process_chunk
    from myeloma_kg.io import RawDocument

    items = [Item(i, RawDocument("cohort", i + 1, data=d)) for i, d in enumerate([VALID, SPACED_FINDING])]
    good, bad = process_chunk(items)
    assert good.result is not None and bad.result is None
    assert [v["path"] for v in bad.error["violations"]] == ["cytogenetics.findings[0]"]


def test_a_drug_id_written_with_spaces_around_it_is_reasoned_about(engine) -> None:
    line = VALID["lines"][0]
    padded = dict(VALID, lines=[dict(line, drugs=[" lenalidomide ", "dexamethasone"])])
    report, rec = recommend_validated(PatientDocument.from_dict(padded), engine=engine)
    assert report.conforms and rec is not None
    assert "lenalidomide" in rec.facts.refractory_to
    assert rec.to_dict() == engine.run([PatientDocument.from_dict(dict(VALID))])[0][0].to_dict()
