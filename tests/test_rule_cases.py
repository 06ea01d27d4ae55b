"""Golden cases of the derivation rules: one folder per rule id, a case that fires and one across its edge."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from expectations import check_derived
from myeloma_kg.facts import derive_facts

CASES = sorted((Path(__file__).parent / "cases").glob("*/*.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.stem}" for c in CASES])
def test_rule_case(case: Path) -> None:
    data = yaml.safe_load(case.read_text())
    facts = derive_facts(data["patient"])
    problems = check_derived(facts, data["expected"]["derived"])
    assert not problems, "\n".join(problems)


def test_every_derivation_rule_has_cases() -> None:
    from myeloma_kg.queries import derivation_queries

    folders = {p.name.split("-")[0] for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir()}
    missing = sorted({q.rule_id for q in derivation_queries() if q.rule_id} - folders)
    assert not missing, f"rules without a tests/cases folder: {missing}"
