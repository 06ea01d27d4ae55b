"""Comparison of engine output with the expected blocks of the YAML fixtures (cases and vignettes).

Lists in fixtures are not exhaustive: each listed item must hold; ``*_exclude`` items must not.
"""

from __future__ import annotations

import json
from typing import Any

STRENGTH_KEYS = {
    "preferred": "preferred",
    "alternative": "alternative",
    "consider": "consider",
    "not_preferred": "not-preferred",
    "excluded": "excluded",
}


def check_derived(facts: Any, expected: dict[str, Any]) -> list[str]:
    """Differences between derived facts and an expected ``derived:`` block."""
    problems: list[str] = []
    situations = set(facts.situations)
    refractory = set(facts.refractory_to)
    exposed = set(facts.exposed_to)
    if "priorLineCount" in expected and facts.prior_line_count != expected["priorLineCount"]:
        problems.append(f"priorLineCount {facts.prior_line_count} != {expected['priorLineCount']}")
    for key, actual in (("situations", situations), ("refractoryTo", refractory), ("exposedTo", exposed)):
        for item in expected.get(f"{key}_include", []) or []:
            if item not in actual:
                problems.append(f"{key} lacks {item!r} (has {sorted(actual)})")
        for item in expected.get(f"{key}_exclude", []) or []:
            if item in actual:
                problems.append(f"{key} has {item!r} but must not")
    if "monthsFromASCTToProgression" in expected:
        if facts.months_from_asct_to_progression != expected["monthsFromASCTToProgression"]:
            problems.append(f"monthsFromASCTToProgression {facts.months_from_asct_to_progression} != "
                            f"{expected['monthsFromASCTToProgression']}")
    if "maintenanceAfterASCT" in expected and facts.maintenance_after_asct != expected["maintenanceAfterASCT"]:
        problems.append(f"maintenanceAfterASCT {facts.maintenance_after_asct} != {expected['maintenanceAfterASCT']}")
    return problems


def check_recommendation(rec: Any, expected: dict[str, Any]) -> list[str]:
    """Differences between a Recommendation and an expected vignette block."""
    problems: list[str] = []
    if expected.get("derived"):
        problems += check_derived(rec.facts, expected["derived"])
    options = expected.get("options") or {}
    for key, strength in STRENGTH_KEYS.items():
        for regimen in options.get(key, []) or []:
            actual = rec.strength_of(regimen)
            if actual != strength:
                problems.append(f"{regimen}: expected {strength}, got {actual}")
    for regimen in options.get("not_offered", []) or []:
        if rec.option(regimen) is not None:
            problems.append(f"{regimen}: must not be offered, got {rec.option(regimen).strength}")
    for regimen, allowed in (expected.get("strength_in") or {}).items():
        actual = rec.strength_of(regimen) or "absent"
        allowed_norm = [STRENGTH_KEYS.get(a, a) for a in allowed]
        if actual not in allowed_norm:
            problems.append(f"{regimen}: expected one of {allowed_norm}, got {actual}")
    if expected.get("no_offered_options"):
        offered = [o.regimen for o in rec.options if o.strength in ("preferred", "alternative", "consider")]
        if offered:
            problems.append(f"expected no offered option, got {offered}")
    warning_rules = {w.rule for w in rec.warnings} | {c for o in rec.options for c in o.rules}
    for rule in expected.get("warnings_rules_include", []) or []:
        if rule not in {w.rule for w in rec.warnings}:
            problems.append(f"warnings lack rule {rule} (have {sorted({w.rule for w in rec.warnings})})")
    del warning_rules
    for rule in expected.get("warnings_rules_exclude", []) or []:
        if rule in {w.rule for w in rec.warnings}:
            problems.append(f"warnings must not include rule {rule}")
    action_rules = {a.rule for a in rec.actions}
    for rule in expected.get("actions_rules_exclude", []) or []:
        if rule in action_rules:
            problems.append(f"actions must not include rule {rule}")
    missing_rules = {m.rule for m in rec.missing}
    for rule in expected.get("missing_rules_include", []) or []:
        if rule not in missing_rules:
            problems.append(f"missing-data notices lack rule {rule} (have {sorted(missing_rules)})")
    for rule in expected.get("missing_rules_exclude", []) or []:
        if rule in missing_rules:
            problems.append(f"missing-data notices must not include rule {rule}")
    for rule in expected.get("actions_rules_include", []) or []:
        if rule not in action_rules:
            problems.append(f"actions lack rule {rule} (have {sorted(action_rules)})")
    for regimen, rules in (expected.get("option_rules") or {}).items():
        opt = rec.option(regimen)
        cited = set(opt.rules) if opt else {r for e in rec.excluded if e.regimen == regimen for r in e.rules}
        for rule in rules:
            if rule not in cited:
                problems.append(f"{regimen} does not cite {rule} (cites {sorted(cited)})")
    return problems


def canonical(value: Any) -> Any:
    """A recommendation with every list sorted: its content, independent of a store's row order."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value
