"""``myeloma-kg kb``: statistics, checks and export of the knowledge base."""

from __future__ import annotations

import click


@click.group()
def kb() -> None:
    """Inspect, check and export the knowledge base."""
