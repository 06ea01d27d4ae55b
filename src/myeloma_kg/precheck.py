"""Typed checks of a patient document that JSON-LD cannot make, run before it becomes RDF.

JSON-LD is lenient where a patient document must not be: it turns ``lines: "VRd"`` into a literal,
``relapse: "2026-01-01"`` into a string, drops ``assessmentDate: null`` without a word, and happily types
``age: true`` as a boolean. These checks catch such shapes of data, name the field the way the author wrote
it (``lines[0].drugs``), and return a *cleaned* copy of the document in which every offending value is
replaced by ``null`` (which JSON-LD drops), so that SHACL validation of the rest does not repeat the same
problem in other words. Everything the SHACL shapes can check (ranges, dates, controlled values, unknown
ids) is left to them: the shapes are the contract, these checks only keep the JSON-LD conversion honest.

>>> issues, cleaned = precheck({"id": "pt-1", "assessmentDate": None, "lines": "VRd"})
>>> [(i.path, i.severity) for i in issues]
[('assessmentDate', 'Violation'), ('lines', 'Violation')]
>>> cleaned["lines"] is None
True
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

VIOLATION = "Violation"
WARNING = "Warning"

# Characters kept as written in drug/regimen ids and codes; everything else is percent-encoded so that the
# JSON-LD processor always produces a well-formed IRI (and SHACL then reports the value as unknown).
_SAFE_IN_IDS = "()[];,+=!*'$&-._~"


@dataclass(frozen=True)
class Spec:
    """What one field of a patient document holds.

    ``kind`` is one of ``map``, ``list``, ``text``, ``date``, ``integer``, ``number``, ``boolean``,
    ``code`` (a controlled value), ``id`` (a drug or regimen id) and ``drug-item`` (a drug id or a
    ``{drug, start, end}`` mapping).
    """

    kind: str
    example: str = ""
    required: bool = False
    item: Spec | None = None
    fields: dict[str, Spec] = field(default_factory=dict)
    many: bool = False  # a mapping that may also be given as a list of mappings (transplant)


def _map(example: str, many: bool = False, **fields: Spec) -> Spec:
    return Spec("map", example=example, fields=fields, many=many)


def _list(item: Spec, example: str) -> Spec:
    return Spec("list", example=example, item=item)


DATE = Spec("date", "a date written YYYY-MM-DD, e.g. 2026-11-01")
INTEGER = Spec("integer", "a whole number")
NUMBER = Spec("number", "a number")
BOOLEAN = Spec("boolean", "true or false")
DRUG_ID = Spec("id", "a drug id, e.g. lenalidomide")
REGIMEN_ID = Spec("id", "a regimen id, e.g. vrd")
CODE = Spec("code", "one of the listed values")

DRUG_ADMINISTRATION = _map(
    "{drug: bortezomib, start: 2021-01-10, end: 2021-03-01}",
    drug=Spec("id", "a drug id, e.g. bortezomib", required=True),
    start=DATE,
    end=DATE,
)
DRUG_ITEM = Spec("drug-item", "a drug id (e.g. lenalidomide) or {drug: <id>, start: <date>, end: <date>}")

LINE = _map(
    "{number: 1, regimen: vrd, start: 2021-01-10, end: 2021-05-01, bestResponse: VGPR}",
    number=INTEGER,
    regimen=REGIMEN_ID,
    drugs=_list(DRUG_ITEM, "[bortezomib, lenalidomide, dexamethasone]"),
    start=DATE,
    end=DATE,
    bestResponse=CODE,
    progression=DATE,
    progressionOnTherapy=BOOLEAN,
    transplant=_map("{kind: autologous, date: 2021-06-15}", many=True, kind=CODE, date=DATE),
    maintenance=_map(
        "{drugs: [lenalidomide], start: 2021-09-01, end: 2023-02-01}",
        drugs=_list(DRUG_ITEM, "[lenalidomide]"),
        start=DATE,
        end=DATE,
    ),
    stoppedForToxicity=_list(DRUG_ID, "[bortezomib]"),
    refractoryTo=_list(DRUG_ID, "[lenalidomide]"),
)

PATIENT = _map(
    "id: pt-017, assessmentDate: 2026-11-01, lines: [...]",
    id=Spec("text", "a text identifier, e.g. pt-017", required=True),
    patientId=Spec("text", "a text identifier"),
    type=Spec("text", "Patient"),
    assessmentDate=Spec("date", DATE.example, required=True),
    age=INTEGER,
    frailty=CODE,
    ecog=INTEGER,
    transplantEligible=BOOLEAN,
    donorAvailable=BOOLEAN,
    prefersOral=BOOLEAN,
    cytogenetics=_map(
        '{tested: 2026-10-20, findings: ["t(11;14)"]}',
        tested=DATE,
        findings=_list(CODE, '["t(11;14)", "del(17p)"] or [] when FISH found none'),
    ),
    neuropathyGrade=INTEGER,
    neuropathyPainful=BOOLEAN,
    heartFailureNYHA=INTEGER,
    lvef=NUMBER,
    uncontrolledHypertension=BOOLEAN,
    cardiovascularRiskFactors=BOOLEAN,
    vteHighRisk=BOOLEAN,
    creatinineClearance=NUMBER,
    extramedullaryDisease=BOOLEAN,
    plasmaCellLeukemia=BOOLEAN,
    relapse=_map("{date: 2026-10-15, kind: clinical, tempo: indolent}", date=DATE, kind=CODE, tempo=CODE),
    lines=_list(LINE, "a list of lines, e.g. lines: [{number: 1, regimen: vrd, start: 2021-01-10}]"),
    labs=_list(
        _map(
            "{date: 2026-10-01, mSpike: 0.8}",
            date=DATE,
            mSpike=NUMBER,
            urineM=NUMBER,
            iFLC=NUMBER,
            uFLC=NUMBER,
        ),
        "a list of dated results, e.g. labs: [{date: 2026-10-01, mSpike: 0.8}]",
    ),
)


@dataclass(frozen=True)
class Issue:
    """One problem found by :func:`precheck`: where (document path), what, and how bad."""

    path: str
    message: str
    severity: str = VIOLATION
    value: Any = None
    check: str = "precheck"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _all_spec_keys(spec: Spec, out: set[str]) -> set[str]:
    out.update(spec.fields)
    for sub in spec.fields.values():
        _all_spec_keys(sub, out)
    if spec.item is not None:
        _all_spec_keys(spec.item, out)
    return out


_SPEC_KEYS = _all_spec_keys(DRUG_ADMINISTRATION, _all_spec_keys(PATIENT, set()))


@cache
def _context_terms() -> frozenset[str]:
    """Keys the JSON-LD context defines that no spec here knows: newer fields, passed through unchecked."""
    from .patient import patient_context

    terms = {key for key, definition in patient_context().items() if isinstance(definition, dict) and "@id" in definition}
    return frozenset(terms - _SPEC_KEYS)


def precheck(data: Any) -> tuple[list[Issue], Any]:
    """Check the shape of a patient document; return the issues and a cleaned copy.

    :param data: the document as parsed from JSON or YAML.
    :returns: ``(issues, cleaned)``; ``cleaned`` is a deep copy in which every value named by a
        violation is ``None`` (dropped by JSON-LD) and ids and codes are made IRI-safe.
    """
    issues: list[Issue] = []
    if not isinstance(data, dict):
        issues.append(
            Issue("", f"a patient document must be a mapping of fields (id, assessmentDate, lines ...), not {_describe(data)}")
        )
        return issues, None
    cleaned = _check_map(data, PATIENT, "", issues, top=True)
    return issues, cleaned


def _check(value: Any, spec: Spec, path: str, issues: list[Issue]) -> Any:
    """Check one value against its spec; return the cleaned value (``None`` when dropped)."""
    if value is None:
        return None
    kind = spec.kind
    if kind == "map":
        if spec.many and isinstance(value, list):
            return [_check_list_item(v, spec, f"{path}[{i}]", issues) for i, v in enumerate(value)]
        if not isinstance(value, dict):
            issues.append(Issue(path, f"{path} must be a mapping, e.g. {spec.example}; got {_describe(value)}", value=value))
            return None
        return _check_map(value, spec, path, issues)
    if kind == "list":
        if not isinstance(value, list):
            issues.append(
                Issue(path, f"{path} must be a list ({spec.example}); got {_describe(value)}. Put the value(s) in [ ].", value=value)
            )
            return None
        assert spec.item is not None
        return [_check_list_item(v, spec.item, f"{path}[{i}]", issues) for i, v in enumerate(value)]
    if kind == "drug-item":
        if isinstance(value, dict):
            return _check_map(value, DRUG_ADMINISTRATION, path, issues)
        return _check_scalar(value, DRUG_ID, path, issues)
    return _check_scalar(value, spec, path, issues)


def _check_list_item(value: Any, spec: Spec, path: str, issues: list[Issue]) -> Any:
    if value is None:
        issues.append(Issue(path, f"{path} is empty (null): remove the item or fill it in ({spec.example})."))
        return None
    return _check(value, spec, path, issues)


def _check_scalar(value: Any, spec: Spec, path: str, issues: list[Issue]) -> Any:
    kind = spec.kind
    if isinstance(value, (list, dict)):
        issues.append(
            Issue(path, f"{path} must be a single value ({spec.example}); got {_describe(value)}.", value=value)
        )
        return None
    if kind in ("integer", "number"):
        if isinstance(value, bool):
            issues.append(
                Issue(path, f"{path} must be {spec.example}, not true/false; got {_describe(value)}.", value=value)
            )
            return None
        if isinstance(value, float) and not math.isfinite(value):
            issues.append(Issue(path, f"{path} must be a finite number; got {value!r}.", value=value))
            return None
        return value
    if kind in ("id", "code"):
        if isinstance(value, str):
            text = value.strip() if kind == "id" else value
            if not text:
                issues.append(Issue(path, f"{path} is empty: give {spec.example} or leave the field out.", value=value))
                return None
            if kind == "id" and text in _document_keys():
                # JSON-LD would read such a value as the key it names (``id`` even as the @id keyword), so the
                # error would quote a different value: say here what was written.
                issues.append(Issue(path, f"{path} '{text}' is a key of the patient document format, not an id of the "
                                          f"catalogue; write {spec.example}.", value=value))
                return None
            return quote(text, safe=_SAFE_IN_IDS)
        return value
    if kind == "text":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            issues.append(Issue(path, f"{path} must be {spec.example}; got {_describe(value)}.", value=value))
            return None
        return value
    return value


@cache
def _document_keys() -> frozenset[str]:
    """Every key the patient JSON-LD context defines (a drug or regimen id must not be one of them)."""
    from .patient import patient_context

    return frozenset(key for key in patient_context() if not key.startswith("@"))


def _check_any(value: Any, path: str, issues: list[Issue]) -> Any:
    """Only the checks every value needs: no JSON-LD keywords, no NaN or infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        issues.append(Issue(path, f"{path} must be a finite number; got {value!r}.", value=value))
        return None
    if isinstance(value, list):
        return [_check_any(v, f"{path}[{i}]", issues) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            where = _join(path, str(key))
            if str(key).startswith("@"):
                issues.append(
                    Issue(where, f"{where}: keys starting with @ are JSON-LD keywords and are not allowed in a patient document; remove it.")
                )
                continue
            out[str(key)] = _check_any(item, where, issues)
        return out
    return value


def _check_map(value: dict[str, Any], spec: Spec, path: str, issues: list[Issue], top: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        key = str(key)
        where = _join(path, key)
        if key.startswith("@"):
            if top and key == "@context":
                continue  # a self-describing JSON-LD document: the shipped context replaces it
            issues.append(
                Issue(where, f"{where}: keys starting with @ are JSON-LD keywords and are not allowed in a patient document; remove it.")
            )
            continue
        sub = spec.fields.get(key)
        if sub is None and key in _context_terms():
            out[key] = _check_any(item, where, issues)  # a field added to the context after these specs
            continue
        if sub is None:
            close = difflib.get_close_matches(key, list(spec.fields), n=1, cutoff=0.7)
            hint = f" Did you mean {close[0]}?" if close else ""
            where_text = f"in {path}" if path else "at the top of the document"
            issues.append(
                Issue(
                    where,
                    f"unknown field {key!r} {where_text} is not part of the patient document and was ignored.{hint}",
                    severity=WARNING,
                    value=item,
                )
            )
            continue
        if item is None:
            if sub.required:
                issues.append(Issue(where, f"{where} is empty (null): it is required; give {sub.example}."))
            continue  # an optional null means "not known", as if the field were absent
        out[key] = _check(item, sub, where, issues)
    if top:
        for key, sub in spec.fields.items():
            if sub.required and key not in value and key == "id":
                issues.append(
                    Issue("id", "the patient has no id: add `id: <unique identifier>` at the top of the document (required, unique within a cohort).")
                )
    return out
