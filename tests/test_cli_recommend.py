"""The recommend, explain and summarize commands: contracts, exit codes, cohort accounting."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from myeloma_kg.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "src" / "myeloma_kg" / "examples" / "pt-017.yaml"
VIGNETTES = sorted((Path(__file__).parent / "end_to_end" / "vignettes").glob("*/patient.yaml"))


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_recommend_json_contract() -> None:
    result = run("recommend", str(EXAMPLE), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"patient", "profile", "situation", "options", "excluded", "warnings", "actions"} <= set(data)
    assert data["patient"] == "pt-017" and data["profile"] == "default"
    for option in data["options"]:
        assert {"regimen", "label", "strength", "rules", "because", "sources", "evidence", "cautions", "actions"} <= set(option)
        assert option["strength"] in {"preferred", "alternative", "consider", "not-preferred"}
        assert option["rules"] and option["sources"]
    strengths = [o["strength"] for o in data["options"]]
    order = ["preferred", "alternative", "consider", "not-preferred"]
    assert strengths == sorted(strengths, key=order.index), "options are ordered by strength"
    for exclusion in data["excluded"]:
        assert {"regimen", "label", "rules", "because"} <= set(exclusion)


def test_recommend_text_and_ttl() -> None:
    text = run("recommend", str(EXAMPLE))
    assert text.exit_code == 0 and "PREFERRED" in text.output and "pt-017" in text.output
    ttl = run("recommend", str(EXAMPLE), "--format", "ttl")
    assert ttl.exit_code == 0 and "mkg:refractoryTo" in ttl.output or "mkg:exposedTo" in ttl.output


def test_recommend_invalid_patient_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"id": "bad-1", "assessmentDate": "2026-01-01",
                                   "lines": [{"number": 1, "drugs": ["lenalidomid"], "start": "2025-01-01"}]}))
    result = CliRunner().invoke(main, ["recommend", str(bad)])
    assert result.exit_code == 1
    assert "lenalidomide" in result.output  # the suggestion reaches the user (stderr is mixed in)


def test_recommend_unknown_profile_is_usage_error() -> None:
    result = CliRunner().invoke(main, ["recommend", str(EXAMPLE), "--profile", "nope"])
    assert result.exit_code == 2


def test_explain_names_rules_and_trials() -> None:
    result = run("explain", str(EXAMPLE), "drd")
    assert result.exit_code == 0, result.output
    assert "R16" in result.output and "POLLUX" in result.output
    unknown = CliRunner().invoke(main, ["explain", str(EXAMPLE), "drdd"])
    assert unknown.exit_code == 2 and "drd" in unknown.output


def test_cohort_accounts_for_every_patient(tmp_path: Path) -> None:
    lines = [json.dumps(yaml.safe_load(p.read_text()), default=str) for p in VIGNETTES[:6]]
    lines.insert(2, "{not json")
    lines.append(json.dumps({"id": "broken", "assessmentDate": "2026-01-01",
                             "lines": [{"number": 1, "drugs": ["foo"], "start": "2025-01-01"}]}))
    cohort = tmp_path / "cohort.jsonl"
    cohort.write_text("\n".join(lines) + "\n")
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    result = CliRunner().invoke(main, ["recommend", str(cohort), "--out", str(out), "--errors", str(err), "--quiet"])
    assert result.exit_code == 1  # some patients failed and --keep-going was not given
    results = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [json.loads(line) for line in err.read_text().splitlines()]
    assert len(results) == 6 and len(errors) == 2
    assert sorted(r["index"] for r in results + errors) == list(range(8))
    assert [r["index"] for r in results] == sorted(r["index"] for r in results), "input order"
    kinds = {e["kind"] for e in errors}
    assert kinds == {"parse-error", "invalid-patient"}
    assert "6 results, 2 errors" in result.output
    # --keep-going exits 0; --resume after an interrupted run redoes only what is missing
    truncated = out.read_text().splitlines(keepends=True)
    out.write_text("".join(truncated[:3]) + truncated[3][:20])  # a cut line, as after Ctrl-C
    err.write_text("")
    again = CliRunner().invoke(main, ["recommend", str(cohort), "--out", str(out), "--errors", str(err),
                                      "--resume", "--keep-going", "--quiet"])
    assert again.exit_code == 0, again.output
    results = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [json.loads(line) for line in err.read_text().splitlines()]
    assert sorted(r["index"] for r in results + errors) == list(range(8))
    summary = CliRunner().invoke(main, ["summarize", str(out), "--format", "json"])
    table = json.loads(summary.output)
    assert table["patients"] == 6 and table["regimens"]


def test_batch_results_equal_single_patient_results(engine) -> None:
    from myeloma_kg.patient import PatientDocument
    from myeloma_kg.recommend import recommend

    docs = [PatientDocument.from_raw(r) for p in VIGNETTES[:8] for r in __import__("myeloma_kg.io", fromlist=["x"]).read_documents(p)]
    batch, _ = engine.run(docs)
    for doc, rec in zip(docs, batch):
        assert rec.to_dict() == recommend(doc, engine=engine).to_dict(), doc.id


def test_cohort_workers_write_the_same_lines_as_one_process(tmp_path: Path) -> None:
    """--jobs 2 (lines decoded and serialised by workers, a bounded window of chunks in flight) writes
    byte for byte what one process writes, in input order, from a JSON Lines file and a directory."""
    import io

    from myeloma_kg.batch import count_items, run_cohort
    from myeloma_kg.synth import generate

    cohort = tmp_path / "cohort.jsonl"
    cohort.write_text("".join(json.dumps(d) + "\n" for d in generate(40, seed=5, invalid_share=0.25)) + "{cut\n")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "a.yaml").write_text(VIGNETTES[0].read_text())
    inputs = [str(cohort), str(folder)]
    assert count_items(inputs) == 42
    outputs = []
    for jobs in (1, 2):
        out, err = io.StringIO(), io.StringIO()
        summary = run_cohort(inputs, out=out, errors=err, jobs=jobs, chunk_size=3)
        assert summary.total == 42 and summary.results + summary.errors == 42
        outputs.append((out.getvalue(), err.getvalue()))
    assert outputs[0] == outputs[1]
    indexes = [json.loads(line)["index"] for text in outputs[0] for line in text.splitlines()]
    assert sorted(indexes) == list(range(42))


def test_cohort_worker_gives_the_validator_its_share_of_the_cores(monkeypatch) -> None:
    """A worker sets pyrudof's thread pool to its share of the cores, unless the user chose a size."""
    import os

    from myeloma_kg.batch import _init_worker

    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    _init_worker(1)
    assert os.environ["RAYON_NUM_THREADS"] == "1"
    monkeypatch.setenv("RAYON_NUM_THREADS", "3")
    _init_worker(1)
    assert os.environ["RAYON_NUM_THREADS"] == "3"
