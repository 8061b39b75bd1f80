"""int8 inference of a sentence-transformers model with ONNX Runtime, for the bulk of indexing.

Most CPUs have no bf16 units but all recent ones multiply int8 quickly (AVX2, AVX512-VNNI, AVX-VNNI,
AMX). The model's transformer is exported to ONNX once and its weights quantised to int8 per output
channel (ONNX Runtime's dynamic quantisation: activations are quantised per run, by their range). The
file is cached on disk, keyed by the weights, so later processes load it in a moment. Pooling and
normalisation stay the model's own sentence-transformers modules, so any model of that family works.
Each text runs on its own (see `Int8Encoder`).

Vectors come out within a cosine of about 0.99 of the float32 ones, so only indexing uses int8;
questions are embedded in full precision.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

RECIPE = "onnx-dynamic-int8-per-channel-v1"  # part of the cache key: change it when the export changes
CACHE_ENV = "HIPPOGRAPH_CACHE_DIR"


class Int8Encoder:
    """Runs a loaded SentenceTransformer's transformer through an int8 ONNX Runtime session, one text
    per run.

    One text per run, because dynamic quantisation scales each run's activations by their range: in a
    batch, a text's vector would depend on its batch-mates (cosine to its vector alone down to 0.95),
    so a sharded index would differ from a single run. Alone, a text has no padding either, which
    makes a run as fast per text as a batch. Runs go to a pool of threads (ONNX Runtime releases the
    GIL), one per core.
    """

    def __init__(self, model, dim: int, cache_dir: Path | None = None, threads: int | None = None):
        import onnxruntime

        self.model, self.dim = model, dim
        path = cached_int8_file(model, cache_dir or default_cache_dir())
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # its warnings about the optimised graph are not the user's business
        options.intra_op_num_threads = 1  # parallel across texts instead: one text is too small to split
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.threads = threads or torch.get_num_threads()
        self.pooling = list(model)[1:]  # pooling, normalisation, any dense layer: run on each text's output

    def encode(self, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 rows. `batch_size` texts are tokenised at a time (the tokenizer is not
        thread-safe, so the calling thread does it), then embedded one by one on the pool."""
        from tqdm.auto import tqdm

        rows = np.zeros((len(texts), self.dim), np.float32)
        with ThreadPoolExecutor(self.threads) as pool, tqdm(total=len(texts), desc="Texts", disable=not progress) as bar:
            for start in range(0, len(texts), batch_size):
                chunk = texts[start : start + batch_size]
                rows[start : start + len(chunk)] = list(pool.map(self._embed_one, self._unpadded(chunk)))
                bar.update(len(chunk))
        return rows

    def _unpadded(self, texts: list[str]) -> list[dict[str, np.ndarray]]:
        """Each text's model inputs as a batch of one, without the padding that tokenising together adds."""
        features = self.model.preprocess(texts)
        mask = features["attention_mask"].numpy().astype(bool)
        return [{name: features[name].numpy()[row, mask[row]][None, :] for name in self.input_names} for row in range(len(texts))]

    def _embed_one(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        hidden = self.session.run(None, inputs)[0]
        features = {"token_embeddings": torch.from_numpy(hidden), "attention_mask": torch.from_numpy(inputs["attention_mask"])}
        with torch.inference_mode():
            for module in self.pooling:
                features = module(features)
        vector = features["sentence_embedding"][0].float().numpy()
        return vector / (np.linalg.norm(vector) or 1)


def default_cache_dir() -> Path:
    """`HIPPOGRAPH_CACHE_DIR`, else the user's cache directory (`XDG_CACHE_HOME` or ~/.cache)/hippograph."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hippograph"


def cached_int8_file(model, cache_dir: Path) -> Path:
    """The int8 ONNX file of `model`, exported and quantised on first use. Written to a temporary name
    and renamed, so processes that race to make it never read a partial file."""
    target = cache_dir / f"{weights_digest(model)}.int8.onnx"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        exported, quantised = Path(scratch, "model.onnx"), Path(scratch, "model.int8.onnx")
        export_transformer(model, exported)
        quantise(exported, quantised)
        os.replace(quantised, target)
    return target


def weights_digest(model) -> str:
    """Names the model by what it computes: its weights, input names and the export recipe."""
    digest = hashlib.sha256(RECIPE.encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def export_transformer(model, path: Path) -> None:
    """The transformer module to ONNX, token embeddings out, batch and sequence length left free."""
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in model.preprocess(["x"])]
    transformer = _TokenEmbeddings(model[0].auto_model, names).eval()
    example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "token_embeddings"]}
    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")  # tracer warnings about shapes taken as constants
        torch.onnx.export(
            transformer, example, str(path), input_names=names, output_names=["token_embeddings"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )


def quantise(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weights, one scale per output channel: per-tensor scales lose
    too much (cosine to float32 about 0.96 against 0.99 here)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _without_root_warnings():  # it advises pre-processing on the root logger: the host app's log
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)


@contextlib.contextmanager
def _without_root_warnings():
    """Drop what is logged on the root logger meanwhile, leaving the logger's own settings alone."""
    drop = logging.Filter("no record has this name")
    logging.getLogger().addFilter(drop)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(drop)


class _TokenEmbeddings(torch.nn.Module):
    """The Hugging Face model with positional tensors in and one tensor out, as the exporter wants."""

    def __init__(self, auto_model, names: list[str]):
        super().__init__()
        self.auto_model, self.names = auto_model, names

    def forward(self, *tensors):
        return self.auto_model(**dict(zip(self.names, tensors))).last_hidden_state
