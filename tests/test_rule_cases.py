"""Golden cases of the rules: one folder per rule id (tests/cases/<rule>/), with a case that fires and
one just across its edge. A case whose expected block has only ``derived`` runs the derivation rules;
one with ``options``, ``warnings_rules_include`` or ``actions_rules_include`` runs the whole engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from expectations import check_derived, check_recommendation
from myeloma_kg.facts import derive_facts
from myeloma_kg.recommend import recommend

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(CASES_DIR.glob("*/*.yaml"))
ENGINE_KEYS = {"options", "warnings_rules_include", "actions_rules_include", "strength_in", "no_offered_options",
               "option_rules", "profiles", "warnings_rules_exclude", "actions_rules_exclude", "missing_rules_include",
               "missing_rules_exclude"}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.stem}" for c in CASES])
def test_rule_case(case: Path, engine) -> None:
    data = yaml.safe_load(case.read_text())
    expected = data["expected"]
    if ENGINE_KEYS & set(expected):
        rec = recommend(data["patient"], expected.get("profile", "default"), engine=engine)
        problems = check_recommendation(rec, expected)
        for profile, block in (expected.get("profiles") or {}).items():
            other = recommend(data["patient"], profile, engine=engine)
            problems += [f"[{profile}] {p}" for p in check_recommendation(other, block)]
    else:
        problems = check_derived(derive_facts(data["patient"]), expected["derived"])
    assert not problems, "\n".join(problems)


def _rule_ids_with_cases() -> set[str]:
    return {p.name.split("-")[0] for p in CASES_DIR.iterdir() if p.is_dir() and any(p.glob("*.yaml"))}


def test_every_derivation_rule_has_cases() -> None:
    from myeloma_kg.queries import derivation_queries

    missing = sorted({q.rule_id for q in derivation_queries() if q.rule_id} - _rule_ids_with_cases())
    assert not missing, f"rules without a tests/cases folder: {missing}"


def test_every_rule_folder_has_a_firing_and_an_edge_case() -> None:
    thin = sorted(p.name for p in CASES_DIR.iterdir() if p.is_dir() and len(list(p.glob("*.yaml"))) < 2)
    assert not thin, f"rule folders with fewer than two cases: {thin}"
