"""The benchmark's textbook baseline reads the knowledge base prepared as the engine's is."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rdflib import RDF, Namespace

MKG = Namespace("https://w3id.org/myeloma-kg/")
RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def _run_module():
    spec = importlib.util.spec_from_file_location("benchmarks_run", RUN)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_baseline_kb_holds_the_prepared_statement_bounds() -> None:
    kb = _run_module().baseline_kb()
    # queries/prepare-kb/statement-bounds.rq: every recommendation gets its plain prior-line bounds
    recommendations = set(kb.subjects(RDF.type, MKG.Recommendation))
    assert recommendations
    bounded = set(kb.subjects(MKG.effectiveMinPriorLines, None))
    assert recommendations <= bounded
    # queries/prepare-kb/constrained-options.rq: the options each constraint acts on
    assert any(True for _ in kb.triples((None, MKG.constrainedOption, None)))
    # the closure itself is left to the baseline (owlrl per patient): no inferred owl:Thing typing added
    assert not any(True for _ in kb.triples((MKG.Recommendation, None, MKG.Recommendation)))
