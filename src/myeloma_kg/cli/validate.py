"""``myeloma-kg validate``: SHACL validation of patient documents."""

from __future__ import annotations

import click


@click.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> None:
    """Validate patient documents against the SHACL shapes."""
    raise click.UsageError("validate is being built")
