"""Instructions per patient of the cohort path, counted by valgrind's callgrind (not timed).

Wall-clock figures on this shared 2-core machine drift by a third from run to run, and in-process A/B
timings of changes under ~0.5 ms per patient do not repeat. Callgrind counts the instructions executed,
which repeat to within ~0.1 % for the same code and input, whatever else the machine is doing. This
script measures one warm worker chunk (``batch._worker``, the code a ``--jobs N`` worker runs per chunk:
validation, reasoning, selection, assembly, JSON lines) so that two versions of the code can be compared exactly:

    python benchmarks/instructions.py                       # this checkout, chunk of 100 patients
    python benchmarks/instructions.py --out figures/x.json  # also write the figures as JSON
    python benchmarks/instructions.py --single --chunk 40    # the warm single-patient engine, one thread
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/instructions.py

The run takes about two minutes (callgrind runs Python ~50x slower). Instruction counts are not time:
they miss cache misses and waiting, so they decide between two versions of the code, while the
throughput benchmark (``run.py``) gives the figures a user feels.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def _child(seed: int, chunk: int, chunks: int) -> None:
    """Inside callgrind: warm up, zero the counters, run the chunks, dump the counters."""
    from myeloma_kg.batch import Item, _worker
    from myeloma_kg.io import RawDocument
    from myeloma_kg.synth import generate_records

    documents = [r.document for r in generate_records(chunk * chunks + 20, seed, 0.0)]
    items = [Item(i, RawDocument("synthetic", i + 1, data=d)) for i, d in enumerate(documents)]
    # a cohort worker's own job (batch._worker: the chunk, its JSON lines, its garbage-collector policy)
    _worker((items[:10], "default", True))
    _worker((items[10:20], "default", True))
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
    for start in range(20, 20 + chunk * chunks, chunk):
        _worker((items[start:start + chunk], "default", True))
    subprocess.run(["callgrind_control", "--dump=measured", pid], check=True, capture_output=True)


def _child_single(seed: int, patients: int) -> None:
    """Inside callgrind: the warm single-patient engine path (``Engine.run`` on one document, then the JSON
    text the CLI prints), on one thread, one patient after the other. Validation is left out: it runs on
    its own thread in ``recommend_validated`` and has its own figures."""
    os.environ["MYELOMA_KG_THREADS"] = "1"  # instructions of the work itself, not of handing it between threads
    from myeloma_kg.patient import PatientDocument
    from myeloma_kg.recommend import default_engine
    from myeloma_kg.synth import generate_records

    documents = [r.document for r in generate_records(patients + 45, seed, 0.0)]
    engine = default_engine()
    for data in documents[:45]:  # warm: caches filled, the kept store renewed once
        engine.run([PatientDocument.from_dict(data)])[0][0].to_json()
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
    for data in documents[45:]:
        engine.run([PatientDocument.from_dict(data)])[0][0].to_json()
    subprocess.run(["callgrind_control", "--dump=measured", pid], check=True, capture_output=True)


def measure(seed: int = 1, chunk: int = 100, chunks: int = 1, single: bool = False) -> dict[str, Any]:
    """Run ``chunks`` chunks under callgrind and return the instructions they took.

    :raises RuntimeError: when valgrind is missing or the measured dump is not found.
    """
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("valgrind (callgrind) is not installed: apt-get install valgrind")
    python = os.path.realpath(sys.executable)  # not a shell shim: valgrind must trace the interpreter itself
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, __file__,
                        "--child", "--seed", str(seed), "--chunk", str(chunk), "--chunks", str(chunks)]
                       + (["--single"] if single else []),
                       check=True, capture_output=True)
        for dump in sorted(Path(tmp).glob("callgrind.out*")):
            text = dump.read_text(errors="replace")
            if "measured" in text.split("\nevents:", 1)[0]:
                match = re.search(r"^summary:\s*(\d+)", text, flags=re.MULTILINE)
                if match:
                    total = int(match.group(1))
                    return {"path": "single" if single else "cohort", "chunk": chunk, "chunks": chunks,
                            "seed": seed, "instructions": total,
                            "instructions_per_patient": round(total / (chunk * chunks))}
    raise RuntimeError("callgrind wrote no measured dump")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="synthetic cohort seed")
    parser.add_argument("--chunk", type=int, default=100, help="patients in the measured chunk")
    parser.add_argument("--chunks", type=int, default=1,
                        help="chunks measured one after the other (the garbage collector's cost varies by chunk)")
    parser.add_argument("--single", action="store_true",
                        help="measure the warm single-patient engine path instead (--chunk patients, one thread)")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.single:
            _child_single(args.seed, args.chunk * args.chunks)
        else:
            _child(args.seed, args.chunk, args.chunks)
        return
    figures = measure(args.seed, args.chunk, args.chunks, args.single)
    what = (f"{figures['chunk'] * figures['chunks']} single patients" if args.single
            else f"{figures['chunks']} chunk(s) of {figures['chunk']}")
    print(f"{figures['instructions_per_patient'] / 1e6:.2f} M instructions per patient ({what}, seed {figures['seed']})")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
