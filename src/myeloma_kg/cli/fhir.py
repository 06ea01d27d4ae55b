"""``myeloma-kg import-fhir``: a FHIR R4 (mCODE) Bundle in, a patient document out.

Exit codes: 0 the document was written (warnings allowed); 1 the Bundle cannot be imported (not a valid
Bundle, no multiple myeloma Condition, several patients) or, with ``--validate`` (the default), the
imported document does not validate; 2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from ..errors import DataError


def _parse_sets(values: tuple[str, ...]) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """``--set frailty=fit --set relapse.tempo=indolent --set lines.1.bestResponse=VGPR``.

    Values are read as YAML scalars (``true``, ``72``, ``2025-01-01`` stay typed; dates become text).
    """
    overrides: dict[str, Any] = {}
    line_overrides: dict[int, dict[str, Any]] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: write KEY=VALUE, e.g. frailty=fit", param_hint="--set")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        parts = key.split(".")
        if not all(parts):
            raise click.BadParameter(f"{key!r} is not a field path", param_hint="--set")
        if parts[0] == "lines":
            if len(parts) != 3 or not parts[1].isdigit():
                raise click.BadParameter(f"{key!r}: a line field is lines.<number>.<field>, e.g. "
                                         "lines.1.bestResponse=VGPR", param_hint="--set")
            line_overrides.setdefault(int(parts[1]), {})[parts[2]] = value
            continue
        target = overrides
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise click.BadParameter(f"{key!r} conflicts with another --set", param_hint="--set")
        target[parts[-1]] = value
    return overrides, line_overrides


@click.command("import-fhir")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Write the patient document here (.yaml/.yml or .json); default: YAML on standard output.")
@click.option("--id", "patient_id", default=None, help="The document id (default: the Patient resource's id).")
@click.option("--assessment-date", default=None, metavar="YYYY-MM-DD",
              help="Date of the recommendation (default: the Bundle's timestamp, else its latest fact); "
                   "facts after it are left out.")
@click.option("--window-days", type=click.IntRange(0, 3650), default=28, show_default=True,
              help="Drugs started within this many days of a line's first drug form one line.")
@click.option("--conditioning-days", type=click.IntRange(0, 365), default=14, show_default=True,
              help="Drugs started this many days before a transplant are its conditioning (same line).")
@click.option("--maintenance-days", type=click.IntRange(0, 3650), default=180, show_default=True,
              help="New drugs started within this many days after a transplant are its consolidation or "
                   "maintenance (same line).")
@click.option("--involved-light-chain", type=click.Choice(["kappa", "lambda"]), default=None,
              help="The involved free light chain (default: inferred from the first paired measurement).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A document field FHIR does not carry, e.g. --set frailty=fit --set transplantEligible=false "
                   "--set relapse.tempo=indolent --set lines.1.bestResponse=VGPR (repeatable).")
@click.option("--report", "report_format", type=click.Choice(["text", "json", "none"]), default="text",
              show_default=True, help="The import report on standard error: mapped, inferred, missing, warnings.")
@click.option("--validate/--no-validate", default=True, show_default=True,
              help="Validate the imported document against the patient shapes; exit 1 when it does not conform.")
def import_fhir(bundle: str, out_path: str | None, patient_id: str | None, assessment_date: str | None,
                window_days: int, conditioning_days: int, maintenance_days: int,
                involved_light_chain: str | None, sets: tuple[str, ...], report_format: str,
                validate: bool) -> None:
    """Import a FHIR R4 / mCODE Bundle (JSON) as a patient document.

    Reads Patient, the multiple myeloma Condition, medications (statements, administrations, requests)
    grouped into lines of therapy, stem-cell transplant Procedures, and ECOG, disease status,
    laboratory, creatinine clearance, cytogenetic and response Observations. Frailty, transplant
    eligibility and the other facts FHIR does not carry are given with --set.
    """
    from ..fhir import ImportOptions, LineRule, from_fhir

    overrides, line_overrides = _parse_sets(sets)
    if out_path and Path(out_path).suffix.lower() not in (".yaml", ".yml", ".json"):
        raise click.BadParameter("the output file must end in .yaml, .yml or .json", param_hint="--out")
    options = ImportOptions(
        assessment_date=assessment_date, patient_id=patient_id, involved_light_chain=involved_light_chain,
        line_rule=LineRule(window_days=window_days, conditioning_days=conditioning_days,
                           maintenance_days=maintenance_days),
        overrides=overrides, line_overrides=line_overrides,
    )
    try:
        result = from_fhir(bundle, options)
    except DataError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if report_format == "text":
        text = result.report.format_text()
        if text:
            click.echo(text, err=True)
    elif report_format == "json":
        click.echo(json.dumps(result.report.to_dict(), indent=2, ensure_ascii=False), err=True)
    body = result.to_json() + "\n" if out_path and out_path.lower().endswith(".json") else result.to_yaml()
    if out_path:
        Path(out_path).write_text(body, encoding="utf-8")
        click.echo(f"wrote {out_path} (patient {result.document['id']}, {len(result.document.get('lines', []))} "
                   "line(s))", err=True)
    else:
        click.echo(body, nl=False)
    if validate:
        from ..validate import validate as validate_document

        report = validate_document(result.document)
        for finding in report.violations:
            click.echo(f"invalid: {finding}", err=True)
        if not report.conforms:
            if report.error is not None:
                click.echo(f"invalid: {report.error}", err=True)
            sys.exit(1)
