"""Broken patient documents pinned to their expected result.

Each ``NN-name.<yaml|json|ttl>`` in this folder sits beside ``NN-name.expected.txt``, which holds
``key: value`` lines:

* ``severity`` (Violation or Warning), ``path`` (the document field path, ``(document)`` for the whole
  document) and ``message`` (a distinctive fragment): one result of the report must match all three;
* optional ``conforms`` (true/false; default false for a Violation, true for a Warning), ``violations``
  (the exact number of violations), ``line`` and ``column`` (where a parse error was found).

A test is generated per pair, named by the file stem. Add a case by adding a pair.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from myeloma_kg.validate import validate_file

HERE = Path(__file__).parent
SUFFIXES = {".yaml", ".yml", ".json", ".jsonl", ".ttl", ".nt", ".jsonld"}
CASES = sorted(p for p in HERE.iterdir() if p.suffix in SUFFIXES)


def _expected(case: Path) -> dict[str, str]:
    text = case.with_name(case.stem + ".expected.txt").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(":")
            out[key.strip()] = value.strip()
    return out


def test_enough_cases() -> None:
    assert len(CASES) >= 25
    for case in CASES:
        assert case.with_name(case.stem + ".expected.txt").is_file(), f"{case.name} has no expected result"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_input(case: Path) -> None:
    expected = _expected(case)
    reports = list(validate_file(case))
    assert len(reports) == 1, "each case file holds one document"
    report = reports[0]
    severity = expected["severity"]
    path = "" if expected["path"] == "(document)" else expected["path"]
    fragment = expected["message"]
    conforms = expected.get("conforms", "true" if severity == "Warning" else "false") == "true"
    described = "\n".join(f"  {r.severity} {r.path!r}: {r.message}" for r in report.results)
    assert report.conforms is conforms, f"conforms should be {conforms}; results:\n{described}"
    matches = [r for r in report.results if r.severity == severity and r.path == path and fragment in r.message]
    assert matches, f"no {severity} at {path!r} containing {fragment!r}; results:\n{described}"
    if "violations" in expected:
        assert len(report.violations) == int(expected["violations"]), described
    if "line" in expected:
        assert report.error is not None and report.error.line == int(expected["line"])  # type: ignore[attr-defined]
    if "column" in expected:
        assert report.error is not None and report.error.column == int(expected["column"])  # type: ignore[attr-defined]
    for result in report.results:
        assert result.message and "Traceback" not in result.message
