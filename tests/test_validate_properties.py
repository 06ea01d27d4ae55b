"""Property-based tests: whatever a document holds, validation ends in a report or a typed error.

Documents are generated at random and by mutating the bundled valid example (pt-017): values replaced by
arbitrary JSON/YAML values, keys deleted or added, lists turned into scalars and back. The only allowed
outcomes are a :class:`~myeloma_kg.validate.ValidationReport` (which must be JSON-serialisable, with
located, non-empty messages) or a :class:`~myeloma_kg.errors.DataError`. Anything else is a bug.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from myeloma_kg.errors import DataError
from myeloma_kg.io import parse_document_text
from myeloma_kg.validate import EXAMPLES_DIR, ValidationReport, validate, validate_raw

BASE: dict[str, Any] = yaml.safe_load((EXAMPLES_DIR / "pt-017.yaml").read_text(encoding="utf-8"))
BASE = json.loads(json.dumps(BASE, default=str))  # YAML dates -> ISO strings, as the reader gives them

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEYS = [
    "id", "assessmentDate", "age", "frailty", "ecog", "cytogenetics", "tested", "findings", "relapse",
    "date", "kind", "tempo", "lines", "number", "regimen", "drugs", "drug", "start", "end", "bestResponse",
    "progression", "transplant", "maintenance", "refractoryTo", "stoppedForToxicity", "labs", "mSpike",
    "lvef", "creatinineClearance", "@id", "@context", "@type", "@value", "@list", "type", "id ", "",
]
CODES = [
    "fit", "frail", "VGPR", "PR", "PRR", "t(11;14)", "del(17p)", "clinical", "indolent", "autologous",
    "vrd", "VRD", "lenalidomide", "lenalidomid", "bortezomib", "2021-01-10", "2021-13-40", "2026-11-01",
    "_:b0", "mkg:Fit", "http://example.org/x", "a b", "%20", "@id", "../x", "", " ", "\u00e9\u00e8", "\x00",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(CODES),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=4),
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, prefix + (key,)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_paths(item, prefix + (i,)))
    return out


def _set(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return doc


def _delete(doc: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add-key", "wrap", "unwrap"]))
        if action == "replace":
            doc = _set(doc, path, draw(json_values))
        elif action == "delete" and path:
            doc = _delete(doc, path)
        elif action == "add-key":
            target = doc
            for step in path:
                target = target[step]
            if isinstance(target, dict):
                target[draw(st.sampled_from(KEYS))] = draw(json_values)
        elif action == "wrap":
            target = doc
            for step in path:
                target = target[step]
            doc = _set(doc, path, [target])
        elif action == "unwrap":
            target = doc
            for step in path:
                target = target[step]
            if isinstance(target, list) and target:
                doc = _set(doc, path, target[0])
        if not isinstance(doc, dict):
            break
    return doc


random_documents = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)


def _check_outcome(document: Any) -> None:
    if isinstance(document, str):  # a string is a path to validate(): covered by the CLI tests
        document = {"id": document}
    try:
        report = validate(document)
    except DataError:
        return
    _check_report(report)


def _check_report(report: ValidationReport) -> None:
    assert isinstance(report, ValidationReport)
    json.dumps(report.to_dict())
    assert report.conforms == (not report.violations and report.error is None)
    for result in report.results:
        assert isinstance(result.path, str)
        assert result.message.strip()
        assert result.severity in {"Violation", "Warning"}


@SETTINGS
@given(mutated_documents())
def test_mutated_documents_give_a_report_or_a_data_error(document: Any) -> None:
    _check_outcome(document)


@SETTINGS
@given(random_documents)
def test_random_documents_give_a_report_or_a_data_error(document: Any) -> None:
    _check_outcome(document)


@SETTINGS
@given(st.text(max_size=200), st.sampled_from(["json", "yaml", "jsonl", "turtle", "nt", "json-ld"]))
def test_random_text_gives_a_report_or_a_data_error(text: str, fmt: str) -> None:
    try:
        raws = parse_document_text(text, fmt, source="random")
    except DataError:
        return
    for raw in raws:
        _check_report(validate_raw(raw))


@SETTINGS
@given(mutated_documents())
def test_yaml_round_trip_gives_a_report_or_a_data_error(document: Any) -> None:
    try:
        text = yaml.safe_dump(document, allow_unicode=True)
    except yaml.YAMLError:
        return
    try:
        raws = parse_document_text(text, "yaml", source="mutated.yaml")
    except DataError:
        return
    for raw in raws:
        _check_report(validate_raw(raw))


def test_the_base_document_is_valid() -> None:
    report = validate(copy.deepcopy(BASE))
    assert report.conforms, [str(v) for v in report.results]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, [], {}, "", None, 10**30, "sixty"])
@pytest.mark.parametrize("key", ["age", "assessmentDate", "lines", "relapse", "cytogenetics", "frailty"])
def test_odd_values_of_top_level_fields(key: str, value: Any) -> None:
    document = copy.deepcopy(BASE)
    document[key] = value
    _check_outcome(document)


# ------------------------------------------------------------------------------------------ engines agree


def _outcome(document: Any, engine: str) -> Any:
    try:
        return validate(copy.deepcopy(document), engine=engine).to_dict()
    except DataError as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(mutated_documents(), random_documents))
def test_rudof_and_pyshacl_engines_agree_on_odd_documents(document: Any) -> None:
    """Whatever a document holds, the rudof engine reports what pySHACL (over Oxigraph) reports."""
    pytest.importorskip("pyrudof")
    if isinstance(document, str):  # a string is a path to validate(): covered by the CLI tests
        document = {"id": document}
    assert _outcome(document, "rudof") == _outcome(document, "oxigraph")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.text(max_size=200), st.sampled_from(["json", "yaml", "turtle", "nt", "json-ld"]))
def test_rudof_and_pyshacl_engines_agree_on_random_text(text: str, fmt: str) -> None:
    pytest.importorskip("pyrudof")
    try:
        raws = parse_document_text(text, fmt, source="random")
    except DataError:
        return
    for raw in raws:
        assert validate_raw(raw, engine="rudof").to_dict() == validate_raw(raw, engine="oxigraph").to_dict()
