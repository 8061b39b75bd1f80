"""The embedder's bfloat16 mode stores linear weights in bf16 once instead of letting autocast cast them
on every call: the vectors must be exactly those of plain autocast over float32 weights."""

from __future__ import annotations

import numpy as np
import torch

from hippograph.pipeline.embed import Embedder

TEXTS = ["Veloria Bridge", "The bridge was designed by Anna Kessler, born in Marrow.", "is mayor of"]


def test_bfloat16_weights_give_the_vectors_of_autocast():
    stored = Embedder("all-MiniLM-L6-v2", precision="bfloat16")
    assert {p.dtype for n, p in stored.model.named_parameters() if ".dense." in n} == {torch.bfloat16}

    plain = Embedder("all-MiniLM-L6-v2", precision="float32")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = plain.model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_array_equal(stored.encode(TEXTS), expected.astype(np.float32))


def test_float32_mode_keeps_float32_weights():
    plain = Embedder("all-MiniLM-L6-v2", precision="float32")
    assert {p.dtype for p in plain.model.parameters()} == {torch.float32}


# A host app's process, as hippograph finds it: its own imports done, its environment and log levels set.
HOST_APP = """
import json, logging, os, sys
preload = sys.argv[1] == "preloaded"
if preload:  # an app that already uses these libraries itself
    import sentence_transformers, spacy, threadpoolctl, torch, transformers  # noqa: F401
logging.getLogger("transformers").setLevel(logging.INFO)
def state():
    levels = {name: logging.getLogger(name).level for name in ["", *logging.root.manager.loggerDict]}
    return dict(os.environ), levels
env, levels = state()
import hippograph
after_import = state()
if preload:
    memory = hippograph.Memory(sys.argv[2])
    memory.index([{"id": "a", "title": "Ada Marsh", "text": "Ada Marsh designed the Veloria Bridge in 1897."}])
    assert memory.retrieve("Who designed the Veloria Bridge?", mode="hipporag").passages
after_use = state()
changed = lambda now: {
    "env": sorted(k for k in set(env) | set(now[0]) if env.get(k) != now[0].get(k)),
    "levels": sorted(k for k in levels if k in now[1] and levels[k] != now[1][k]),
}
print("RESULT " + json.dumps({"import": changed(after_import), "use": changed(after_use)}))
"""


def host_app(mode: str, db) -> dict:
    import json
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", HOST_APP, mode, str(db)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(next(line for line in run.stdout.splitlines() if line.startswith("RESULT "))[7:])


def test_importing_hippograph_changes_no_environment_variable_or_log_level(tmp_path):
    assert host_app("bare", tmp_path / "m.duckdb")["import"] == {"env": [], "levels": []}


def test_indexing_and_querying_leave_the_host_environment_and_log_levels_as_they_were(tmp_path):
    """Loading the bundled embedder offline needs no HF_HUB_OFFLINE, and long texts need no silenced logger."""
    result = host_app("preloaded", tmp_path / "m.duckdb")
    assert result == {"import": {"env": [], "levels": []}, "use": {"env": [], "levels": []}}
