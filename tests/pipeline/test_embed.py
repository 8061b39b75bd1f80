"""The embedder's bfloat16 mode stores linear weights in bf16 once instead of letting autocast cast them
on every call: the vectors must be exactly those of plain autocast over float32 weights."""

from __future__ import annotations

import numpy as np
import pytest
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


# ---- int8 indexing (ONNX Runtime) --------------------------------------------------------------------

PASSAGES = [
    "The Veloria Bridge is a suspension bridge over the Sarn, designed by the engineer Anna Kessler.",
    "Anna Kessler was born in Marrow, a market town on the river Sarn, in 1861.",
    "In 1902 the mayor of Marrow was Edwin Hale, who later founded the Marrow Courier newspaper.",
    "The Marrow Courier is a weekly newspaper; its first issue appeared in 1911.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The Treaty of Westphalia ended the Thirty Years' War in 1648.",
]
QUESTIONS = ["Who designed the Veloria Bridge?", "Where was Anna Kessler born?", "Who was mayor of Marrow in 1902?",
             "When did the Marrow Courier first appear?", "How do plants store light energy?", "What ended the Thirty Years' War?"]


def test_int8_corpus_vectors_stay_close_to_float32_and_rank_alike():
    int8 = Embedder("all-MiniLM-L6-v2", precision="int8")
    plain = Embedder("all-MiniLM-L6-v2", precision="float32")
    quantised, exact = int8.encode_corpus(PASSAGES + TEXTS), plain.encode(PASSAGES + TEXTS)
    assert int8.corpus_precision == "int8" and quantised.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(quantised, axis=1), 1, atol=1e-5)
    cosines = (quantised * exact).sum(axis=1)
    assert cosines.min() > 0.97 and cosines.mean() > 0.985, cosines
    questions = plain.encode(QUESTIONS)
    assert ((questions @ quantised[: len(PASSAGES)].T).argmax(axis=1) == np.arange(len(QUESTIONS))).all()


def test_an_int8_vector_does_not_depend_on_the_texts_embedded_with_it():
    """So a sharded index equals a single run's (a batch would scale each run's activations together)."""
    int8 = Embedder("all-MiniLM-L6-v2", precision="int8")
    together = int8.encode_corpus(PASSAGES + TEXTS, batch_size=3)
    np.testing.assert_array_equal(int8.encode_corpus(TEXTS[::-1])[::-1], together[len(PASSAGES):])
    np.testing.assert_array_equal(int8.encode_corpus(PASSAGES[:1]), together[:1])


def test_int8_mode_embeds_questions_in_full_precision():
    int8 = Embedder("all-MiniLM-L6-v2", precision="int8")
    expected = int8.model.encode(QUESTIONS, normalize_embeddings=True, convert_to_numpy=True)
    assert ((int8.encode(QUESTIONS) * expected).sum(axis=1) > 1 - 1e-5).all()


def test_questions_run_on_onnx_runtime_with_the_models_vectors():
    plain = Embedder("all-MiniLM-L6-v2", precision="float32")
    assert plain.query_backend == "onnxruntime"
    vectors = plain.encode(QUESTIONS + TEXTS)
    expected = plain.model.encode(QUESTIONS + TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(vectors, expected, atol=2e-6)
    np.testing.assert_allclose(plain.encode(QUESTIONS[2:3]), vectors[2:3], atol=1e-6)  # alone as among others


def test_a_querys_texts_share_one_run_and_keep_their_own_vectors(monkeypatch):
    """A question and the names it links are packed into one ONNX run, each text attending to itself only."""
    plain = Embedder("all-MiniLM-L6-v2", precision="float32")
    texts = [QUESTIONS[0], "the kettleby gazette", "Paris", QUESTIONS[1]]
    alone = np.concatenate([plain.encode([text]) for text in texts])
    session = plain._onnx_float32().session
    runs = []
    monkeypatch.setattr(session, "run", lambda *args, real=session.run: runs.append(args) or real(*args))
    packed = plain.encode(texts)
    assert len(runs) == 1
    np.testing.assert_allclose(packed, alone, atol=1e-6)


def test_an_export_that_changes_the_vectors_leaves_questions_to_pytorch(monkeypatch):
    from hippograph.pipeline import embed_onnx

    real_encode = embed_onnx.OnnxEncoder.encode
    monkeypatch.setattr(embed_onnx.OnnxEncoder, "encode", lambda self, *a, **k: real_encode(self, *a, **k)[:, ::-1].copy())
    plain = Embedder("all-MiniLM-L6-v2", precision="float32")
    assert plain.query_backend == "torch"
    expected = plain.model.encode(QUESTIONS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_array_equal(plain.encode(QUESTIONS), expected)


def test_float32_mode_embeds_the_corpus_as_it_embeds_questions_each_text_alone():
    """Corpus texts do not share runs, so a sharded index's vectors equal a single run's to the bit."""
    plain = Embedder("all-MiniLM-L6-v2", precision="float32")
    assert plain.corpus_precision == "float32"
    corpus = plain.encode_corpus(PASSAGES + TEXTS)
    np.testing.assert_allclose(corpus, plain.encode(PASSAGES + TEXTS), atol=1e-6)
    np.testing.assert_array_equal(plain.encode_corpus(TEXTS[::-1])[::-1], corpus[len(PASSAGES):])


def test_the_int8_model_is_exported_once_then_read_from_the_cache(tmp_path, monkeypatch):
    from hippograph.pipeline import embed_onnx

    model = Embedder("all-MiniLM-L6-v2", precision="float32").model
    first = embed_onnx.OnnxEncoder(model, 384, "int8", cache_dir=tmp_path)
    (made,) = tmp_path.iterdir()  # one file, no scratch left behind

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(embed_onnx, "export_transformer", no_export)
    again = embed_onnx.OnnxEncoder(model, 384, "int8", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.encode(PASSAGES, 4), first.encode(PASSAGES, 4))
    assert list(tmp_path.iterdir()) == [made]


def test_int8_without_onnx_runtime_says_what_to_install(monkeypatch):
    from hippograph.errors import ModelNotFoundError
    from hippograph.pipeline import embed

    monkeypatch.setattr(embed, "_onnx_installed", lambda: False)
    auto = Embedder("all-MiniLM-L6-v2", precision="auto")
    assert auto.corpus_precision in ("float32", "bfloat16") and auto.query_backend == "torch"
    forced = Embedder("all-MiniLM-L6-v2", precision="int8")
    with pytest.raises(ModelNotFoundError, match="pip install onnxruntime onnx"):
        forced.encode_corpus(PASSAGES)


def test_int8_keeps_the_first_layers_output_products_in_float32():
    """The products whose inputs carry outliers: the attention output and the feed-forward output of the
    first layer, found by their weights' shapes (square before the first widening, first narrowing)."""
    from hippograph.pipeline import embed_onnx

    model = Embedder("all-MiniLM-L6-v2", precision="float32").model
    exported = embed_onnx.cached_onnx_file(model, embed_onnx.default_cache_dir(), "float32")
    assert embed_onnx._first_output_products(exported) == [
        "/auto_model/encoder/layer.0/attention/output/dense/MatMul",
        "/auto_model/encoder/layer.0/output/dense/MatMul",
    ]


@pytest.mark.parametrize(
    "amx, avx512_bf16, onnx, expected",
    [
        (True, True, True, "bfloat16"),  # AMX: bf16 indexed fastest
        (False, True, True, "int8"),  # AVX512-BF16 without AMX: int8 on ONNX Runtime indexed faster
        (False, True, False, "bfloat16"),  # ... unless ONNX Runtime is missing
        (False, False, True, "int8"),
        (False, False, False, "float32"),
    ],
)
def test_auto_precision_follows_what_the_cpu_computes_fastest(monkeypatch, amx, avx512_bf16, onnx, expected):
    from hippograph.pipeline import embed

    monkeypatch.setattr(embed, "_cpu_has_amx", lambda: amx)
    monkeypatch.setattr(embed, "_cpu_has_native_bf16", lambda: avx512_bf16 or amx)
    monkeypatch.setattr(embed, "_onnx_installed", lambda: onnx)
    assert Embedder("all-MiniLM-L6-v2", precision="auto").corpus_precision == expected


@pytest.mark.parametrize("precision", ["int8", "float32"])
def test_mean_pooling_in_numpy_gives_the_models_own_pooling(tmp_path, precision):
    from hippograph.pipeline import embed_onnx

    model = Embedder("all-MiniLM-L6-v2", precision="float32").model
    encoder = embed_onnx.OnnxEncoder(model, 384, precision, cache_dir=tmp_path)
    assert encoder.mean_pooled, "all-MiniLM-L6-v2 pools by the mean and normalises"
    texts = PASSAGES + TEXTS
    fast = encoder.encode(texts, 4)
    encoder.mean_pooled = False  # the model's own Pooling and Normalize modules
    np.testing.assert_allclose(fast, encoder.encode(texts, 4), atol=1e-6)


def test_other_pooling_runs_the_models_own_modules():
    from sentence_transformers.models import Normalize, Pooling

    from hippograph.pipeline.embed_onnx import _is_mean_pooling_then_normalize

    assert _is_mean_pooling_then_normalize([Pooling(384, pooling_mode="mean"), Normalize()])
    assert not _is_mean_pooling_then_normalize([Pooling(384, pooling_mode="cls"), Normalize()])
    assert not _is_mean_pooling_then_normalize([Pooling(384, pooling_mode="mean")])


def test_int8_texts_of_one_length_share_a_run_and_keep_their_vectors_alone(tmp_path):
    """Each token is quantised by its own range, so a run of many texts gives each the vector it gets alone."""
    from hippograph.pipeline import embed_onnx

    model = Embedder("all-MiniLM-L6-v2", precision="float32").model
    encoder = embed_onnx.OnnxEncoder(model, 384, "int8", cache_dir=tmp_path)
    assert encoder.texts_per_run == embed_onnx.TEXTS_PER_RUN  # the file says it is quantised per token
    cities = ["Paris", "Rome", "Berlin", "Madrid", "London", "Vienna"]  # one word piece each
    assert len(encoder._same_length_runs(encoder._unpadded(cities))) == 1
    together = encoder.encode(cities, batch_size=256)
    alone = np.stack([encoder.encode([city], batch_size=1)[0] for city in cities])
    np.testing.assert_array_equal(together, alone)
    assert len({vector.tobytes() for vector in together}) == len(cities)
