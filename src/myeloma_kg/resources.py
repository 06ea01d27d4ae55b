"""Where the packaged knowledge files live.

The ontology, shapes and queries sit at the top of the repository (``ontology/``, ``shapes/``,
``queries/``) so that curators and Protégé find them; the wheel carries copies under
``myeloma_kg/_resources/``. This module finds whichever is present.

>>> (ontology_dir() / "core.ttl").is_file()
True
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def resource_root() -> Path:
    """Return the directory that holds ``ontology/``, ``shapes/`` and ``queries/``.

    :returns: the installed ``_resources`` directory, or the source checkout's root.
    :raises FileNotFoundError: when neither layout is present (a broken installation).
    """
    installed = _PACKAGE_DIR / "_resources"
    if (installed / "ontology").is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent.parent
    if (checkout / "ontology").is_dir():
        return checkout
    raise FileNotFoundError(
        "myeloma-kg cannot find its ontology/, shapes/ and queries/ folders; reinstall the package"
    )


def ontology_dir() -> Path:
    """Directory of the OWL ontology files (Turtle) and ``catalog-v001.xml``."""
    return resource_root() / "ontology"


def shapes_dir() -> Path:
    """Directory of the SHACL shapes."""
    return resource_root() / "shapes"


def queries_dir() -> Path:
    """Directory of the SPARQL queries (``rules/``, ``api/``, ``qc/``)."""
    return resource_root() / "queries"


def context_path() -> Path:
    """The JSON-LD context that turns a patient JSON/YAML document into RDF."""
    return _PACKAGE_DIR / "context" / "patient.context.jsonld"
