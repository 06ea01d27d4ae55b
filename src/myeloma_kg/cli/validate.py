"""``myeloma-kg validate``: SHACL validation of patient documents.

Exit codes: 0 when every patient is valid (warnings allowed), 1 when a patient is invalid or a document
cannot be parsed, 2 for usage errors (missing file, unknown file type, bad option).
"""

from __future__ import annotations

import json
import statistics
import time

import click

from ..errors import UsageError
from ..validate import ValidationReport, validate_file


def _who(report: ValidationReport) -> str:
    """The first column of a text line: the patient id, or where the document is when it has none."""
    if report.patient:
        return report.patient
    if report.error is not None and report.error.source:
        return report.error.source
    where = report.source or "<input>"
    return f"{where}#{report.position}" if report.position else where


def _text_lines(report: ValidationReport, show_warnings: bool) -> list[str]:
    lines = []
    for result in report.violations + (report.warnings if show_warnings else []):
        lines.append(f"{_who(report)} / {result.path or '(document)'} / {result.message} / {result.severity}")
    return lines


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True, readable=True))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line per result (patient / field path / message / severity) and a summary; "
    "json: a list of per-patient reports.",
)
@click.option("--warnings/--no-warnings", default=True, show_default=True, help="Print warnings in text output.")
@click.option(
    "--engine",
    type=click.Choice(["rudof", "oxigraph", "rdflib"]),
    default=None,
    help="SHACL engine: rudof (fastest; the default when pyrudof is installed), oxigraph (pySHACL over "
         "pyoxigraph) or rdflib (pySHACL's reference mode). All give identical reports.",
)
def validate(files: tuple[str, ...], output_format: str, warnings: bool, engine: str | None) -> None:
    """Validate patient documents against the SHACL shapes.

    FILES are .json, .yaml, .jsonl, .ttl, .nt or .jsonld files (a file may hold several patients) or
    directories, read recursively. Exit status: 0 valid (warnings allowed), 1 invalid or unreadable,
    2 usage error.
    """
    started = time.perf_counter()
    reports: list[ValidationReport] = []
    try:
        for name in files:
            for report in validate_file(name, engine=engine):
                reports.append(report)
                if output_format == "text":
                    for line in _text_lines(report, warnings):
                        click.echo(line)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    elapsed = time.perf_counter() - started
    if output_format == "json":
        click.echo(json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False))
    else:
        click.echo(_summary(reports, elapsed))
    if not reports or any(not r.conforms for r in reports):
        raise SystemExit(1)


def _summary(reports: list[ValidationReport], elapsed: float) -> str:
    unreadable = sum(1 for r in reports if r.error is not None)
    invalid = sum(1 for r in reports if r.error is None and not r.conforms)
    valid = len(reports) - unreadable - invalid
    violations = sum(len(r.violations) for r in reports if r.error is None)
    warnings = sum(len(r.warnings) for r in reports)
    if not reports:
        return "no patient documents found"
    median = statistics.median(r.seconds for r in reports) * 1000
    parts = [f"{len(reports)} document(s): {valid} valid, {invalid} invalid"]
    if unreadable:
        parts.append(f"{unreadable} unreadable")
    return (
        ", ".join(parts)
        + f"; {violations} violation(s), {warnings} warning(s)"
        + f" ({elapsed:.2f} s in all, start-up included; median {median:.0f} ms per document)"
    )
