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
    assert kept is not None and len(kept) == len(reasoner.new_store()) < during
    with reasoner.batch([doc.quads]):
        pass
    assert reasoner._kept is kept  # reused, not reloaded
