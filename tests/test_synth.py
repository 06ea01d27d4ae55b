"""The synthetic cohort generator (issue 6): determinism, plausibility, and validity as generated."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
from click.testing import CliRunner

from myeloma_kg.errors import DataError
from myeloma_kg.synth import DEFECTS, REGIMEN_COMPONENTS, generate, generate_records, patient
from myeloma_kg.validate import validate

FRONT_LINE = {"vrd", "vtd", "vcd", "vmp", "d_vmp", "d_vrd", "drd", "rd"}
RD_TRIPLETS = {"rd", "drd", "krd", "ird", "erd"}


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _violations(document: dict) -> list[str]:
    """The violations of a document, or the typed error it raises (as one entry)."""
    try:
        report = validate(document)
    except DataError as exc:  # a typed error is an accepted way to reject a document
        return [f"{type(exc).__name__}: {exc}"]
    return [str(v) for v in report.violations]


# ---------------------------------------------------------------------------------------------- determinism


def test_same_seed_same_documents():
    assert list(generate(40, seed=3)) == list(generate(40, seed=3))
    assert list(generate(40, seed=3, invalid_share=0.2)) == list(generate(40, seed=3, invalid_share=0.2))


def test_prefix_property_for_different_n():
    short = list(generate(15, seed=9, invalid_share=0.1))
    long = list(generate(120, seed=9, invalid_share=0.1))
    assert long[:15] == short
    assert patient(9, 77, invalid_share=0.1) == long[77]
    assert [r.document for r in generate_records(10, 9, 0.1, start=30)] == long[30:40]


def test_different_seeds_differ():
    a, b = list(generate(20, seed=1)), list(generate(20, seed=2))
    assert all(x["id"] != y["id"] for x, y in zip(a, b))
    assert [x["lines"] for x in a] != [y["lines"] for y in b]


def test_invalid_share_leaves_valid_patients_unchanged():
    clean = list(generate(200, seed=4))
    mixed = list(generate_records(200, seed=4, invalid_share=0.25))
    defective = [r for r in mixed if r.defect is not None]
    assert 25 <= len(defective) <= 80
    for record in mixed:
        if record.defect is None:
            assert record.document == clean[record.index]
        else:
            assert record.document != clean[record.index]


def test_bad_arguments():
    with pytest.raises(ValueError):
        list(generate(-1, seed=1))
    with pytest.raises(ValueError):
        list(generate(1, seed=1, invalid_share=1.5))


# ---------------------------------------------------------------------------------------------- plausibility


@pytest.fixture(scope="module")
def cohort() -> list[dict]:
    return list(generate(3000, seed=1))


def test_documents_are_json_with_unique_ids(cohort):
    assert json.loads(json.dumps(cohort)) == cohort
    assert len({d["id"] for d in cohort}) == len(cohort)


def test_regimen_components_match_the_knowledge_base():
    from myeloma_kg.kb import KnowledgeBase

    kb = KnowledgeBase.load()
    for regimen, components in REGIMEN_COMPONENTS.items():
        assert set(kb.regimen(regimen).components) == set(components), regimen


def test_dates_are_consistent(cohort):
    for doc in cohort:
        lines = doc["lines"]
        assert 1 <= len(lines) <= 6
        assert [line["number"] for line in lines] == list(range(1, len(lines) + 1))
        assessment = _d(doc["assessmentDate"])
        previous = None
        for line in lines:
            start, end, progression = _d(line["start"]), _d(line["end"]), _d(line["progression"])
            assert start <= end <= progression, (doc["id"], line)
            if previous is not None:
                assert start > previous, (doc["id"], line["number"])
            previous = progression
            for item in line["drugs"]:
                if isinstance(item, dict):
                    assert start <= _d(item["start"]) <= _d(item["end"]) <= end
            if "transplant" in line:
                assert start <= _d(line["transplant"]["date"]) <= progression
            if "maintenance" in line:
                m = line["maintenance"]
                assert start <= _d(m["start"]) <= _d(m["end"]) <= progression
            if line["progressionOnTherapy"]:
                last = _d(line["maintenance"]["end"]) if "maintenance" in line else end
                assert last == progression
        assert doc["relapse"]["date"] == lines[-1]["progression"]
        assert assessment > _d(lines[-1]["progression"])
        if "cytogenetics" in doc:
            assert _d(doc["cytogenetics"]["tested"]) <= assessment
        for lab in doc.get("labs", []):
            assert _d(lab["date"]) <= assessment


def test_lines_use_real_regimens_and_their_drugs(cohort):
    for doc in cohort:
        first = doc["lines"][0]
        assert first["regimen"] in FRONT_LINE
        for line in doc["lines"]:
            drugs = {item["drug"] if isinstance(item, dict) else item for item in line["drugs"]}
            if "regimen" in line:
                assert drugs == set(REGIMEN_COMPONENTS[line["regimen"]])
            given = drugs | set(line.get("maintenance", {}).get("drugs", []))
            assert set(line.get("stoppedForToxicity", [])) <= given
            assert set(line.get("refractoryTo", [])) <= given


def test_clinical_distributions(cohort):
    n = len(cohort)
    line_counts = Counter(len(d["lines"]) for d in cohort)
    assert set(line_counts) == {1, 2, 3, 4, 5, 6}
    assert line_counts[1] > line_counts[3] > line_counts[6]
    tested = [d for d in cohort if "cytogenetics" in d]
    assert 0.75 < len(tested) / n < 0.97  # sometimes absent
    t1114 = sum("t(11;14)" in d["cytogenetics"]["findings"] for d in tested) / len(tested)
    assert 0.12 < t1114 < 0.22
    high_risk = sum(bool({"del(17p)", "t(4;14)", "t(14;16)"} & set(d["cytogenetics"]["findings"])) for d in tested)
    assert 0.15 < high_risk / len(tested) < 0.45
    assert sum(bool(d.get("extramedullaryDisease")) for d in cohort) / n < 0.1
    assert sum(bool(d.get("plasmaCellLeukemia")) for d in cohort) / n < 0.03
    frailty = Counter(d.get("frailty") for d in cohort)
    assert frailty["fit"] > frailty["intermediate"] > frailty["frail"] > frailty[None] > 0
    lines = [line for d in cohort for line in d["lines"]]
    on_therapy = sum(line["progressionOnTherapy"] for line in lines) / len(lines)
    assert 0.45 < on_therapy < 0.9
    asct = sum("transplant" in d["lines"][0] for d in cohort) / n
    assert 0.3 < asct < 0.65
    maintained = [d for d in cohort if "maintenance" in d["lines"][0]]
    assert all(d["lines"][0]["maintenance"]["drugs"][-1] == "lenalidomide" for d in maintained)
    responses = Counter(line["bestResponse"] for line in lines)
    assert responses["VGPR"] > responses["SD"] and responses["PR"] > responses["PD"]


def test_rd_triplets_after_lenalidomide_refractoriness_are_rare(cohort):
    after, rd_after = 0, 0
    for doc in cohort:
        refractory = False
        for line in doc["lines"]:
            if refractory:
                after += 1
                rd_after += line.get("regimen") in RD_TRIPLETS
            progression = _d(line["progression"])
            ends = [_d(line["end"])] if "lenalidomide" in line["drugs"] else []
            if "lenalidomide" in line.get("maintenance", {}).get("drugs", []):
                ends.append(_d(line["maintenance"]["end"]))
            if ends and ((progression - max(ends)).days <= 60 or line["bestResponse"] in ("SD", "PD")):
                refractory = True
    assert after > 500
    assert rd_after / after < 0.03


# ---------------------------------------------------------------------------------------------- validation


def test_valid_documents_validate_cleanly():
    for doc in generate(300, seed=11):
        assert _violations(doc) == [], doc["id"]


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_every_defect_is_rejected(defect):
    import random

    applied = 0
    for index, doc in enumerate(generate(12, seed=5)):
        rng = random.Random(f"test/{defect}/{index}")
        if DEFECTS[defect](doc, rng):
            assert _violations(doc), (defect, doc)
            applied += 1
        if applied == 3:
            break
    assert applied > 0


def test_invalid_documents_are_rejected():
    records = list(generate_records(150, seed=13, invalid_share=1.0))
    assert len({r.defect for r in records}) >= 15
    for record in records:
        assert _violations(record.document), (record.defect, record.document)


def test_engine_accepts_generated_documents(engine):
    from myeloma_kg.patient import PatientDocument

    docs = [PatientDocument.from_dict(d) for d in generate(12, seed=21)]
    results, _ = engine.run(docs)
    assert [r.patient for r in results] == [d.id for d in docs]
    assert all(r.facts.prior_line_count == len(d.data["lines"]) for r, d in zip(results, docs))


# ---------------------------------------------------------------------------------------------- command line


def test_cli_writes_json_lines(tmp_path):
    from myeloma_kg.cli.synth import synth

    runner = CliRunner()
    result = runner.invoke(synth, ["--n", "25", "--seed", "2", "--invalid-share", "0.2"])
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.output.splitlines()]
    assert docs == list(generate(25, seed=2, invalid_share=0.2))

    out, defects = tmp_path / "cohort.jsonl", tmp_path / "defects.jsonl"
    result = runner.invoke(synth, ["--n", "25", "--seed", "2", "--invalid-share", "0.2", "--out", str(out),
                                   "--defects", str(defects)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in out.read_text().splitlines()] == docs
    listed = [json.loads(line) for line in defects.read_text().splitlines()]
    expected = [r for r in generate_records(25, 2, 0.2) if r.defect]
    assert [(x["index"], x["defect"]) for x in listed] == [(r.index, r.defect) for r in expected]


def test_cli_rejects_bad_share():
    from myeloma_kg.cli.synth import synth

    result = CliRunner().invoke(synth, ["--n", "2", "--invalid-share", "2"])
    assert result.exit_code == 2
