"""Clinical safety invariants, property-tested over generated patients (batches through one engine run)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from myeloma_kg.patient import PatientDocument
from myeloma_kg.recommend import default_engine
from strategies import patient_documents

OFFERED = {"preferred", "alternative", "consider", "not-preferred"}


def _batch(docs: list[dict]):
    engine = default_engine()
    patients = [PatientDocument.from_dict(d) for d in docs]
    results, _ = engine.run(patients)
    return engine, results


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(patient_documents(), min_size=10, max_size=25))
def test_safety_invariants(docs: list[dict]) -> None:
    for i, d in enumerate(docs):
        d["id"] = f"{d['id']}-{i}"
    engine, results = _batch(docs)
    catalog = engine.catalog
    for rec in results:
        refractory = set(rec.facts.refractory_to)
        offered = [o.regimen for o in rec.options]
        excluded = [e.regimen for e in rec.excluded]
        assert len(offered) == len(set(offered)), rec.patient
        assert not set(offered) & set(excluded), f"{rec.patient}: offered and excluded {set(offered) & set(excluded)}"
        for option in rec.options:
            assert option.strength in OFFERED
            assert option.rules, f"{rec.patient}/{option.regimen} has no rule"
            assert option.sources, f"{rec.patient}/{option.regimen} has no source"
            components = set(catalog.option("https://w3id.org/myeloma-kg/regimen/" + option.regimen).components)
            for drug in components & refractory:
                assert "R9" in option.rules, f"{rec.patient}/{option.regimen}: refractory {drug} not flagged with a rule"
                assert any(drug.replace("_", " ") in c.lower() or drug in c.lower() for c in option.cautions), \
                    f"{rec.patient}/{option.regimen}: refractory {drug} not named in cautions {option.cautions}"
            if "lenalidomide" in components and "lenalidomide" in refractory:
                raise AssertionError(f"{rec.patient}: {option.regimen} offered although lenalidomide-refractory")
            if "venetoclax" in components:
                assert "t(11;14)" in rec.situation, f"{rec.patient}: venetoclax offered without t(11;14)"
        for exclusion in rec.excluded:
            assert exclusion.rules and exclusion.sources, f"{rec.patient}/{exclusion.regimen} lacks rule or source"
        for notice in rec.warnings + rec.actions + rec.missing:
            assert notice.rule and notice.message


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(patient_documents(), min_size=5, max_size=10))
def test_deterministic_and_batch_independent(docs: list[dict]) -> None:
    for i, d in enumerate(docs):
        d["id"] = f"{d['id']}-{i}"
    _, first = _batch(docs)
    _, again = _batch(list(reversed(docs)))
    by_id = {r.patient: r.to_dict() for r in again}
    for rec in first:
        assert rec.to_dict() == by_id[rec.patient], rec.patient
    _, single = _batch([docs[0]])
    assert single[0].to_dict() == first[0].to_dict()
