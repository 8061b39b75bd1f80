"""examples/rag_app.py runs offline on the demo corpus: it indexes, prints the evidence and the draft answer,
and a second run skips what is stored; a bad path is one clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "examples" / "rag_app.py"
QUESTION = "In which town was the designer of the Veloria Bridge born?"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(APP), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_example_app_answers_offline_from_the_demo_corpus(tmp_path, demo_corpus):
    db = str(tmp_path / "app.duckdb")
    first = run(str(demo_corpus), QUESTION, "--db", db, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "42 documents: 42 indexed" in first.stdout
    assert "Answer (offline draft): Kettleby" in first.stdout
    cited = [line for line in first.stdout.splitlines() if line.startswith("*")]
    assert len(cited) == 1 and "Citations: " + cited[0].split("[")[1].split("]")[0] in first.stdout
    again = run(str(demo_corpus), QUESTION, "--db", db, cwd=tmp_path)
    assert again.returncode == 0 and "42 documents: 0 indexed, 42 already stored" in again.stdout


def test_the_example_app_names_a_missing_path(tmp_path):
    result = run(str(tmp_path / "nowhere"), QUESTION, "--db", str(tmp_path / "app.duckdb"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error: ") and "nowhere" in result.stderr
    assert result.stdout == ""
