"""Packaging: `graph`, `pipeline` and `indexing` install only as subpackages of `hippograph`, never top-level."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("graph", "pipeline", "indexing")


def expected_files() -> list[str]:
    """Every module of the checkout, where an install must put it: read from the repository, so a new
    module is checked without anyone remembering to list it."""
    files = [f"hippograph/{p.name}" for p in (REPO / "src" / "hippograph").iterdir() if p.suffix in (".py", ".typed")]
    files += [f"hippograph/{package}/{p.name}" for package in SUBPACKAGES for p in (REPO / package).glob("*.py")]
    assert "hippograph/py.typed" in files and "hippograph/graph/hipporag.py" in files
    return sorted(files)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HIPPOGRAPH_DB")}


def installed_distribution(tmp_path) -> dict:
    """The installed distribution's metadata, read by a Python started outside the repository (run from the
    repository root, importlib.metadata would find the build's leftover hippograph.egg-info there instead)."""
    code = """
import json
from importlib import metadata
dist = metadata.distribution("hippograph")
print(json.dumps({
    "location": str(dist.locate_file("")),
    "top_level": dist.read_text("top_level.txt"),
    "direct_url": json.loads(dist.read_text("direct_url.json") or "{}"),
    "files": [f.as_posix() for f in dist.files or []],
    "scripts": {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"},
}))
"""
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_distribution_installs_only_the_hippograph_package(tmp_path):
    dist = installed_distribution(tmp_path)
    assert "site-packages" in dist["location"]
    assert dist["top_level"].split() == ["hippograph"]
    assert dist["scripts"] == {"hippograph": "hippograph.cli:main"}
    files = dist["files"]
    assert any(f.endswith(".dist-info/RECORD") for f in files)
    assert not [f for f in files if f.split("/")[0] in SUBPACKAGES], "bare top-level packages installed"
    if not dist["direct_url"].get("dir_info", {}).get("editable"):
        # a regular install lists every module it put in site-packages
        assert sorted(set(expected_files()) - set(files)) == []


def test_outside_the_repository_only_hippograph_subpackages_import(tmp_path):
    code = """
import importlib, json
result = {}
for name in ["graph", "pipeline", "indexing", "hippograph.graph", "hippograph.pipeline", "hippograph.indexing",
             "hippograph.graph.hipporag", "hippograph.pipeline.run", "hippograph.indexing.store", "hippograph.cli"]:
    try:
        importlib.import_module(name)
        result[name] = True
    except ModuleNotFoundError as error:
        result[name] = str(error)
print(json.dumps(result))
"""
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    for bare in SUBPACKAGES:
        assert result[bare] == f"No module named '{bare}'"
    assert all(result[name] is True for name in result if name.startswith("hippograph")), result


def test_console_script_is_installed(tmp_path):
    script = shutil.which("hippograph", path=os.path.dirname(sys.executable))
    assert script is not None
    run = subprocess.run([script, "--help"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0
    for command in ("index", "query", "delete", "stats", "eval"):
        assert command in run.stdout


@pytest.mark.slow
def test_wheel_nests_subpackages_under_hippograph(repo_root, tmp_path):
    # Build from a copy, so the build leaves no build/ or .egg-info/ in the repository.
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in ("src", *SUBPACKAGES):
        shutil.copytree(repo_root / name, source / name, symlinks=True, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (repo_root / name).exists():
            shutil.copy(repo_root / name, source / name)
    out = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-w", str(out), str(source)],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=180,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    [wheel] = out.glob("hippograph-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names}
    assert top_level == {"hippograph", next(n for n in top_level if n.endswith(".dist-info"))}, top_level
    assert sorted(set(expected_files()) - set(names)) == []
    dist_info = next(n for n in top_level if n.endswith(".dist-info"))
    assert zipfile.ZipFile(wheel).read(f"{dist_info}/top_level.txt").decode().split() == ["hippograph"]
