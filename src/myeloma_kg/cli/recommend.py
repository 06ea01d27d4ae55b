"""``myeloma-kg recommend``: ranked, explained regimen options for patients."""

from __future__ import annotations

import click


@click.command()
@click.argument("patients", nargs=-1, required=True)
def recommend(patients: tuple[str, ...]) -> None:
    """Recommend regimens for one or more patients."""
    raise click.UsageError("recommend is being built")
