"""An on-disk cache of artefacts compiled from the knowledge-base files, to keep cold starts short.

Parsing the Turtle files with rdflib and closing them under OWL 2 RL takes seconds; the results
depend only on the packaged files. They are cached under ``$MYELOMA_KG_CACHE`` (default
``$XDG_CACHE_HOME/myeloma-kg`` or ``~/.cache/myeloma-kg``), keyed by the package version and a
hash of every input file, written atomically, and read only from that directory. Set
``MYELOMA_KG_CACHE=off`` to disable it. A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from . import __version__

T = TypeVar("T")


def cache_dir() -> Path | None:
    """The cache directory, or None when caching is off."""
    setting = os.environ.get("MYELOMA_KG_CACHE")
    if setting and setting.lower() in {"off", "0", "no", "false"}:
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "myeloma-kg"


def _key(name: str, inputs: Iterable[Path]) -> str:
    digest = hashlib.sha256(f"{name}\0{__version__}".encode())
    for path in sorted(inputs):
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return f"{name}-{digest.hexdigest()[:32]}.pickle"


def cached(name: str, inputs: Iterable[Path], build: Callable[[], T]) -> T:
    """Return ``build()``, from the cache when the inputs are unchanged.

    :param name: what is cached (part of the file name).
    :param inputs: the files the artefact is compiled from.
    :param build: compiles the artefact when it is not cached.
    """
    inputs = list(inputs)
    directory = cache_dir()
    if directory is None:
        return build()
    path = directory / _key(name, inputs)
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass
    value = build()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".tmp") as tmp:
            pickle.dump(value, tmp, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp.name, path)
    except OSError:
        pass
    return value
