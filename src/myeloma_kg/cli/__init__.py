"""The ``myeloma-kg`` command line: a thin layer that registers the commands living beside their features."""

from __future__ import annotations

import click

from .. import __version__
from .kb import kb
from .recommend import explain, recommend, summarize
from .validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="myeloma-kg")
def main() -> None:
    """Guideline reasoning for relapsed/refractory multiple myeloma over a knowledge graph."""


main.add_command(kb)
main.add_command(validate)
main.add_command(recommend)
main.add_command(explain)
main.add_command(summarize)
