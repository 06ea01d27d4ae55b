"""myeloma-kg: guideline reasoning for relapsed/refractory multiple myeloma over a knowledge graph."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
