"""The ``myeloma-kg`` command line: a thin layer that registers the commands living beside their features."""

from __future__ import annotations

import click

from .. import __version__
from .fhir import import_fhir
from .kb import kb
from .recommend import explain, recommend, summarize
from .serve import push, serve
from .synth import synth
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
main.add_command(serve)
main.add_command(push)
main.add_command(synth)
main.add_command(import_fhir, name="import-fhir")
