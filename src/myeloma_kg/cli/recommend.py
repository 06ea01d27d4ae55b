"""``myeloma-kg recommend`` and ``myeloma-kg explain``: ranked, explained regimen options."""

from __future__ import annotations

import json
import sys

import click

from ..batch import DEFAULT_CHUNK
from ..errors import DataError, UsageError
from ..recommend import PROFILES
from ._exits import exit_codes

FORMATS = ("text", "json", "ttl")


def _load_and_validate(path: str):
    """Load one patient and validate it; exit 1 with the report on stderr when invalid."""
    from ..patient import load_patient
    from ..validate import validate

    doc = load_patient(path)
    report = validate(doc)
    if not report.conforms:
        _reject(doc.id, report)
    return doc, report


def _recommend_validated(path: str, profile: str):
    """Load one patient, validate it while the engine reasons, and return the recommendation; exit 1
    with the report on stderr when the document is invalid (as :func:`_load_and_validate`)."""
    from ..patient import load_patient
    from ..recommend import recommend_validated

    doc = load_patient(path)
    report, rec = recommend_validated(doc, profile)
    if rec is None:
        _reject(doc.id, report)
    return rec


def _reject(patient_id: str, report) -> None:
    for v in report.violations:
        click.echo(str(v), err=True)
    click.echo(f"{patient_id}: invalid patient document ({len(report.violations)} error(s)); see above", err=True)
    sys.exit(1)


def _is_single(patients: tuple[str, ...]) -> bool:
    """One file holding one document: the interactive case (text by default)."""
    from pathlib import Path

    from ..io import read_documents

    if len(patients) != 1 or Path(patients[0]).is_dir() or patients[0].endswith((".jsonl", ".ndjson")):
        return False
    try:
        return sum(1 for _ in read_documents(patients[0])) == 1
    except (DataError, UsageError):
        return True  # let the single-patient path report the problem


@click.command()
@click.argument("patients", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="text for reading, json for the recommendation contract, ttl for the derived graph "
                   "(single patient; default text). Cohort runs always write JSON Lines.")
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True,
              help="Guideline profile: which sources, jurisdiction and footnote reading to apply (R56).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Cohort run: write one recommendation per line (JSON Lines), in input order.")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False), default=None,
              help="Cohort run: write one error per line (patient id, input position, typed error, message).")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@click.option("--chunk-size", type=click.IntRange(1, 100000), default=DEFAULT_CHUNK, show_default=True,
              help="Patients reasoned together in one store pass.")
@click.option("--resume", is_flag=True, help="Continue an interrupted cohort run from its complete lines.")
@click.option("--keep-going", is_flag=True, help="Exit 0 even when some patients failed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--endpoint", default=None, metavar="URL",
              help="Run the same rule queries on a remote SPARQL 1.1 store that holds the knowledge base "
                   "(see `myeloma-kg push`); needs its update endpoint too (--update-endpoint).")
@click.option("--update-endpoint", default=None, metavar="URL",
              help="SPARQL 1.1 Update endpoint of the remote store (default: the --endpoint URL).")
def recommend(patients: tuple[str, ...], fmt: str | None, profile: str, out_path: str | None, errors_path: str | None,
              jobs: int, chunk_size: int, resume: bool, keep_going: bool, quiet: bool, endpoint: str | None,
              update_endpoint: str | None) -> None:
    """Recommend regimens for patient documents (JSON, YAML, JSON Lines or RDF; files or directories).

    One patient: printed as text (or --format json|ttl). Several patients, a directory or a JSON Lines
    file: a cohort run, one JSON line per patient, every patient accounted for in results or errors.

    Exit codes: 0 done, 1 invalid patient (report on stderr) or failed patients in a cohort run,
    2 usage error, 3 knowledge-base error.
    """
    with exit_codes():
        if endpoint:
            if fmt == "ttl":
                raise click.UsageError("--format ttl shows the local derived graph; drop --endpoint or the format")
            if jobs > 1:
                raise click.UsageError("--endpoint reasons in one remote graph: use --jobs 1")
            from ..remote import use_remote_engine

            use_remote_engine(endpoint, update_endpoint)
        if out_path is None and errors_path is None and _is_single(patients) and not resume:
            _recommend_single(patients[0], fmt or "text", profile)
            return
        if fmt not in (None, "json"):
            raise click.UsageError("cohort runs write JSON Lines; --format text/ttl is for one patient")
        _recommend_cohort(patients, profile, out_path, errors_path, jobs, chunk_size, resume, keep_going, quiet)


def _recommend_single(path: str, fmt: str, profile: str) -> None:
    from ..explain import render_text
    from ..recommend import default_engine

    if fmt == "ttl":
        doc, _ = _load_and_validate(path)
        results, store = default_engine().run([doc], profile, keep_store=True)
        rec = results[0]
    else:  # validation overlaps reasoning; an invalid document's recommendation is dropped
        rec = _recommend_validated(path, profile)
    if fmt == "json":
        click.echo(rec.to_json())
    elif fmt == "ttl":
        from rdflib import Graph

        from ..namespaces import PREFIXES
        from ..queries import api_query
        from ..reason import to_rdflib

        graph = Graph()
        for prefix, ns in PREFIXES.items():
            graph.bind(prefix, ns)
        for t in store.query(api_query("patient-graph").executable):
            graph.add((to_rdflib(t.subject), to_rdflib(t.predicate), to_rdflib(t.object)))
        click.echo(graph.serialize(format="turtle"))
    else:
        click.echo(render_text(rec))


def _recommend_cohort(patients: tuple[str, ...], profile: str, out_path: str | None, errors_path: str | None,
                      jobs: int, chunk_size: int, resume: bool, keep_going: bool, quiet: bool) -> None:
    from pathlib import Path

    from ..batch import Progress, count_items, prepare_resume, run_cohort

    out_p = Path(out_path) if out_path else None
    err_p = Path(errors_path) if errors_path else None
    if resume and out_p is None:
        raise click.UsageError("--resume needs --out (and usually --errors) from the interrupted run")
    skip = prepare_resume(out_p, err_p) if resume else set()
    mode = "a" if resume else "w"
    out_fh = open(out_p, mode, encoding="utf-8") if out_p else sys.stdout
    err_fh = open(err_p, mode, encoding="utf-8") if err_p else sys.stderr
    enabled = not quiet and out_p is not None and sys.stderr.isatty()
    total = count_items(list(patients)) if enabled else None
    progress = Progress(total - len(skip) if total is not None else None, enabled=enabled)
    try:
        summary = run_cohort(list(patients), out=out_fh, errors=err_fh, profile=profile, jobs=jobs,
                             chunk_size=chunk_size, skip=skip, progress=progress.advance)
    except KeyboardInterrupt:
        progress.close()
        click.echo("interrupted: complete lines kept; rerun with --resume to continue", err=True)
        sys.exit(130)
    finally:
        if out_p:
            out_fh.close()
        if err_p:
            err_fh.close()
    progress.close()
    click.echo(summary.text(), err=True)
    if summary.errors and not keep_going:
        sys.exit(1)


@click.command()
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def summarize(results: str, fmt: str) -> None:
    """Cohort table from a results file: regimens by strength and situation, and the rules behind exclusions."""
    from ..batch import render_summary
    from ..batch import summarize as summarize_file

    table = summarize_file(results)
    click.echo(json.dumps(table, indent=2) if fmt == "json" else render_summary(table))


@click.command()
@click.argument("patient", type=click.Path())
@click.argument("regimen")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True)
def explain(patient: str, regimen: str, fmt: str, profile: str) -> None:
    """Explain one regimen for one patient: facts, situation, rules, sources and trial figures."""
    from ..explain import explain as explain_regimen
    from ..explain import render_explanation

    with exit_codes():
        doc, _ = _load_and_validate(patient)
        ex = explain_regimen(doc, regimen, profile)
    if fmt == "json":
        click.echo(json.dumps(ex.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_explanation(ex))
