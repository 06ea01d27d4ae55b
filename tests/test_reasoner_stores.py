"""The reasoner's two ways of holding a batch give the same answers and leave nothing behind."""

from __future__ import annotations

from pathlib import Path

from myeloma_kg.patient import load_patient
from myeloma_kg.reason import Reasoner
from myeloma_kg.recommend import Engine

VIGNETTES = sorted((Path(__file__).parent / "end_to_end" / "vignettes").glob("*/patient.yaml"))


def test_fresh_store_batches_equal_kept_store_batches() -> None:
    docs = [load_patient(p) for p in VIGNETTES]
    assert len(docs) >= Reasoner.FRESH_STORE_MIN
    engine = Engine(reasoner=Reasoner())
    together, _ = engine.run(docs)  # one fresh store, rules as SPARQL updates
    for doc, rec in zip(docs, together):
        alone, _ = engine.run([doc])  # the kept store, rules as journaled CONSTRUCTs
        assert alone[0].to_dict() == rec.to_dict(), doc.id


def test_kept_store_returns_to_the_knowledge_base_after_each_batch() -> None:
    reasoner = Reasoner()
    doc = load_patient(VIGNETTES[0])
    with reasoner.batch([doc.quads]) as store:
        during = len(store)
    kept = reasoner._kept
    assert kept is not None and len(kept) == len(reasoner.batch_store()) < during
    with reasoner.batch([doc.quads]):
        pass
    assert reasoner._kept is kept  # reused, not reloaded


# ---------------------------------------------------------------- skipped rules and concurrent waves

RULE_CASES = Path(__file__).parent / "cases"


def _reference_engine() -> Engine:
    """Every rule, one by one, in file order, over the whole knowledge base: what the skipping, the waves and
    the pruned batch stores must reproduce."""
    return Engine(reasoner=Reasoner(skip_unmatchable=False, concurrent=False, prune_kb=False))


def _case_patient(path: Path):
    import yaml

    from myeloma_kg.patient import PatientDocument

    return PatientDocument.from_dict(yaml.safe_load(path.read_text(encoding="utf-8"))["patient"])


def test_skipping_waves_and_pruned_stores_give_the_reference_answers() -> None:
    from myeloma_kg.patient import PatientDocument
    from myeloma_kg.synth import generate

    vignettes = [load_patient(p) for p in VIGNETTES]
    cases = [_case_patient(p) for p in sorted(RULE_CASES.glob("*/*.yaml"))]  # every rule's edges
    synthetic = [PatientDocument.from_dict(d) for d in generate(30, seed=11)]
    reference, scheduled = _reference_engine(), Engine(reasoner=Reasoner())
    threaded = Engine(reasoner=Reasoner(concurrent=True))  # waves and reads on threads
    for doc in vignettes + cases + synthetic:
        expected = reference.run([doc])[0][0].to_dict()
        assert scheduled.run([doc])[0][0].to_dict() == expected, doc.id
        assert threaded.run([doc])[0][0].to_dict() == expected, doc.id
    for doc in vignettes:  # the private store of --format ttl
        expected = reference.run([doc])[0][0].to_dict()
        assert scheduled.run([doc], keep_store=True)[0][0].to_dict() == expected, doc.id
    together = vignettes + synthetic  # one fresh (pruned) store, rules as SPARQL updates
    for doc, rec in zip(together, scheduled.run(together)[0]):
        assert rec.to_dict() == reference.run([doc])[0][0].to_dict(), doc.id


def test_batch_stores_hold_the_knowledge_base_the_queries_read() -> None:
    reasoner = Reasoner()
    kept = reasoner.kb_predicates()
    assert kept is not None
    assert "http://www.w3.org/2000/01/rdf-schema#label" in kept  # situations.rq reads labels
    assert "http://www.w3.org/2004/02/skos/core#definition" not in kept  # no query reads definitions
    assert reasoner.template.classifying_predicates <= kept
    assert len(reasoner.batch_store()) < len(reasoner.new_store())
    assert Reasoner(prune_kb=False).kb_predicates() is None
    from myeloma_kg.queries import QueryFile

    everything = QueryFile(Path("everything.rq"), "SELECT * WHERE { ?s ?p ?o }", {})
    assert Reasoner(readers=[everything]).kb_predicates() is None  # a variable predicate: the whole KB


def _rules_run(reasoner: Reasoner, doc) -> list[str]:
    ran: list[str] = []
    original = Reasoner._construct

    def counting(store, query):
        ran.append(query.name)
        return original(store, query)

    reasoner._construct = counting  # type: ignore[method-assign]
    with reasoner.batch([doc.quads]):
        pass
    return ran


def test_laboratory_rules_run_only_when_a_laboratory_value_is_present() -> None:
    with_labs = _case_patient(RULE_CASES / "R2" / "mspike-rise-0.5-fires.yaml")
    assert any(q.predicate.value.endswith("/lab") for q in with_labs.quads)
    without = load_patient(VIGNETTES[0])
    without.quads[:] = [q for q in without.quads if not q.predicate.value.endswith("/lab")]
    reasoner = Reasoner()
    assert {"R2", "R4"} <= set(_rules_run(reasoner, with_labs))
    assert not {"R2", "R4"} & set(_rules_run(reasoner, without))
    assert {"R2", "R4"} <= set(_rules_run(Reasoner(skip_unmatchable=False), without))


def test_an_external_store_runs_every_rule() -> None:
    reasoner = Reasoner()
    assert reasoner.present_predicates([]) is not None
    assert Reasoner(skip_unmatchable=False).present_predicates([]) is None
    external = Reasoner(store=reasoner.new_store())  # may hold more than the knowledge base
    assert external.present_predicates([]) is None


def test_a_rule_needing_a_class_nobody_has_is_skipped() -> None:
    """R36 reads patients classified with a donor and high-risk cytogenetics: without a donor it cannot fire,
    so it is not run; with one it is (and with skipping off it always is). The answers are the reference's
    (test_skipping_waves_and_pruned_stores_give_the_reference_answers runs every rule case)."""
    import yaml

    from myeloma_kg.patient import PatientDocument

    case = yaml.safe_load((RULE_CASES / "R36" / "age-65-consider.yaml").read_text(encoding="utf-8"))["patient"]
    with_donor = PatientDocument.from_dict(case)
    without_donor = PatientDocument.from_dict(dict(case, id="r36-no-donor", donorAvailable=False))
    reasoner = Reasoner()
    assert "R36" in _rules_run(reasoner, with_donor)
    assert "R36" not in _rules_run(reasoner, without_donor)
    assert "R36" in _rules_run(Reasoner(skip_unmatchable=False), without_donor)
    reference = _reference_engine()
    for doc in (with_donor, without_donor):
        assert Engine(reasoner=reasoner).run([doc])[0][0].to_dict() == reference.run([doc])[0][0].to_dict()
