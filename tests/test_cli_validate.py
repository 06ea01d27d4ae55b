"""``myeloma-kg validate``: exit codes, text and JSON output, no traceback on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from myeloma_kg.cli.validate import validate as validate_command
from myeloma_kg.validate import EXAMPLES_DIR

EXAMPLE = EXAMPLES_DIR / "pt-017.yaml"
BAD_INPUT = Path(__file__).parent / "bad_input"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(validate_command, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_valid_document_exits_0() -> None:
    code, out = run(str(EXAMPLE))
    assert code == 0
    assert out.strip().splitlines()[-1].startswith("1 document(s): 1 valid, 0 invalid; 0 violation(s), 0 warning(s)")


def test_warnings_only_exits_0() -> None:
    code, out = run(str(BAD_INPUT / "37-warning-no-cytogenetics.yaml"))
    assert code == 0
    assert "bi-37 / cytogenetics / No cytogenetics recorded" in out
    assert out.rstrip().endswith("/ Warning") is False  # the summary comes last
    assert " / Warning" in out


def test_no_warnings_option_hides_warnings() -> None:
    code, out = run("--no-warnings", str(BAD_INPUT / "37-warning-no-cytogenetics.yaml"))
    assert code == 0
    assert "/ Warning" not in out
    assert "1 warning(s)" in out


def test_invalid_document_exits_1_with_one_line_per_result() -> None:
    code, out = run(str(BAD_INPUT / "10-unknown-drug.yaml"))
    assert code == 1
    first = out.splitlines()[0]
    patient, path, message, severity = first.split(" / ")
    assert (patient, path, severity) == ("bi-10", "lines[0].drugs[1]", "Violation")
    assert message.endswith("Did you mean lenalidomide?")


@pytest.mark.parametrize(
    ("name", "location"),
    [
        ("01-malformed-yaml.yaml", "01-malformed-yaml.yaml:7:1"),
        ("02-malformed-json.json", "02-malformed-json.json:4:13"),
        ("03-malformed-turtle.ttl", "03-malformed-turtle.ttl:7"),
    ],
)
def test_malformed_files_exit_1_with_file_line_and_column(name: str, location: str) -> None:
    code, out = run(str(BAD_INPUT / name))
    assert code == 1
    assert location in out
    assert "malformed" in out
    assert "unreadable" in out


def test_mixed_files_exit_1_and_keep_going() -> None:
    code, out = run(str(BAD_INPUT / "02-malformed-json.json"), str(EXAMPLE))
    assert code == 1
    assert "2 document(s): 1 valid, 0 invalid, 1 unreadable" in out


def test_directory_is_read_recursively() -> None:
    cases = [p for p in BAD_INPUT.iterdir() if p.suffix in {".yaml", ".json", ".ttl"}]
    code, out = run("--format", "json", str(BAD_INPUT))
    assert code == 1
    reports = json.loads(out)
    assert len(reports) == len(cases)


def test_json_format() -> None:
    code, out = run("--format", "json", str(EXAMPLE), str(BAD_INPUT / "16-start-after-end.yaml"),
                    str(BAD_INPUT / "02-malformed-json.json"))
    assert code == 1
    valid, invalid, broken = json.loads(out)
    assert valid["patient"] == "pt-017" and valid["conforms"] is True and valid["violations"] == []
    assert invalid["patient"] == "bi-16" and invalid["conforms"] is False
    assert invalid["violations"][0]["path"] == "lines[0].end"
    assert invalid["violations"][0]["severity"] == "Violation"
    assert broken["conforms"] is False
    assert broken["source"].endswith("02-malformed-json.json")
    assert (broken["error"]["line"], broken["error"]["column"]) == (4, 13)
    assert broken["error"]["type"] == "ParseError"


def test_jsonl_file_with_several_patients(tmp_path: Path) -> None:
    good = json.dumps({"id": "a", "assessmentDate": "2026-01-01", "frailty": "fit", "relapse": {
        "date": "2025-12-01", "kind": "clinical"}, "cytogenetics": {"tested": "2025-12-10", "findings": []}})
    path = tmp_path / "cohort.jsonl"
    path.write_text(good + "\n" + "{broken\n" + good.replace('"a"', '"b"').replace("fit", "sturdy") + "\n",
                    encoding="utf-8")
    code, out = run("--format", "json", str(path))
    assert code == 1
    reports = json.loads(out)
    assert [r["conforms"] for r in reports] == [True, False, False]
    assert reports[1]["error"]["line"] == 2
    assert reports[2]["violations"][0]["path"] == "frailty"


def test_missing_file_is_a_usage_error() -> None:
    code, out = run("does-not-exist.yaml")
    assert code == 2
    assert "does not exist" in out


def test_unknown_suffix_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "patient.txt"
    path.write_text("id: x\n", encoding="utf-8")
    code, out = run(str(path))
    assert code == 2
    assert "unknown file type" in out


def test_bad_option_is_a_usage_error() -> None:
    code, _ = run("--format", "xml", str(EXAMPLE))
    assert code == 2


def test_no_file_is_a_usage_error() -> None:
    code, _ = run()
    assert code == 2


def test_not_utf8_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("id: pt-\xe9\n".encode("latin-1"))
    code, out = run(str(path))
    assert code == 1
    assert "not UTF-8" in out


def test_installed_command_shows_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nlines: [\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", "from myeloma_kg.cli import main; main()", "validate", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"{bad}:3:1 / (document) / malformed YAML" in proc.stdout
