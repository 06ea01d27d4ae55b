"""The wheel carries the ontology, shapes and queries, and an installed copy finds them.

Builds the wheel with pip (hatchling is the backend; no build isolation, so no download is needed
when hatchling is installed), installs it without dependencies into a fresh virtual environment that
sees the system site-packages (for rdflib and friends), and asks the installed package, from a
folder outside the checkout, where its resources are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import json, myeloma_kg, myeloma_kg.resources as r
print(json.dumps({
    "package": str(myeloma_kg.__file__),
    "ontology": str(r.ontology_dir()),
    "core": (r.ontology_dir() / "core.ttl").is_file(),
    "entry": (r.ontology_dir() / "myeloma-kg.ttl").is_file(),
    "catalog": (r.ontology_dir() / "catalog-v001.xml").is_file(),
    "shapes": r.shapes_dir().is_dir() and (r.shapes_dir() / "knowledge.shapes.ttl").is_file(),
    "queries": r.queries_dir().is_dir() and any((r.queries_dir() / "qc").glob("*-violation.rq")),
}))
"""


def run(cmd: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_installed_wheel_finds_its_resources(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(REPO)], cwd=tmp_path)
    (wheel,) = list(wheels.glob("myeloma_kg-*.whl"))

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--force-reinstall",
         "-q", str(wheel)], cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    found = json.loads(run([str(python), "-c", PROBE], cwd=outside).strip().splitlines()[-1])
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=outside).strip())
    assert Path(found["package"]).is_relative_to(site), found
    assert Path(found["ontology"]).is_relative_to(site), found
    assert Path(found["ontology"]).parts[-2:] == ("_resources", "ontology")
    assert found["core"] and found["entry"] and found["catalog"], found
    assert found["shapes"] and found["queries"], found
