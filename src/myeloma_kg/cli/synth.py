"""``myeloma-kg synth``: a deterministic synthetic cohort as JSON Lines (issue 6).

Register with ``main.add_command(synth)`` in :mod:`myeloma_kg.cli`.
"""

from __future__ import annotations

import json
import sys

import click


@click.command()
@click.option("--n", "n", type=click.IntRange(min=0), default=1000, show_default=True, help="Number of patients.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Cohort seed: patient i of a seed is the same document whatever --n is.")
@click.option("--invalid-share", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Share of deliberately invalid documents (one injected defect each).")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the first patient (to write a cohort in parts).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True,
              help="Output file (JSON Lines); - for standard output.")
@click.option("--defects", "defects_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write one JSON line per invalid document: index, id and the injected defect.")
def synth(n: int, seed: int, invalid_share: float, start: int, out_path: str, defects_path: str | None) -> None:
    """Write N synthetic patient documents, one JSON document per line.

    \b
    Examples:
      myeloma-kg synth --n 10000 --seed 1 > cohort.jsonl
      myeloma-kg synth --n 1000 --seed 2 --invalid-share 0.02 --out cohort.jsonl --defects defects.jsonl
    """
    from ..synth import generate_records

    out = sys.stdout if out_path == "-" else open(out_path, "w", encoding="utf-8")
    defects = open(defects_path, "w", encoding="utf-8") if defects_path else None
    try:
        for record in generate_records(n, seed, invalid_share, start=start):
            out.write(json.dumps(record.document, ensure_ascii=False, separators=(",", ":")) + "\n")
            if defects is not None and record.defect is not None:
                doc_id = record.document.get("id")
                defects.write(json.dumps({"index": record.index, "id": doc_id, "defect": record.defect}) + "\n")
    except BrokenPipeError:  # `myeloma-kg synth ... | head`: stop quietly
        sys.stderr.close()
    finally:
        if out is not sys.stdout:
            out.close()
        if defects is not None:
            defects.close()
