"""The one mapping from typed errors to the CLI's documented exit codes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..errors import DataError, KnowledgeBaseError, UnknownIdentifierError, UsageError


@contextmanager
def exit_codes() -> Iterator[None]:
    """Turn our typed errors into the documented exit codes: 1 bad data, 2 usage, 3 knowledge base."""
    try:
        yield
    except UnknownIdentifierError as exc:  # an unknown regimen named on the command line
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    except KnowledgeBaseError as exc:
        click.echo(f"knowledge-base error: {exc}", err=True)
        sys.exit(3)
    except DataError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
