"""ONNX Runtime inference of a sentence-transformers model: int8 for the bulk of indexing, float32 for
questions.

The model's transformer is exported to ONNX once and cached on disk, keyed by its weights, so later
processes load it in a moment. Pooling and normalisation stay the model's own sentence-transformers
modules, so any model of that family works. Each text runs on its own (see `OnnxEncoder`).

- int8: most CPUs have no bf16 units but all recent ones multiply int8 quickly (AVX2, AVX512-VNNI,
  AVX-VNNI, AMX). The weights are quantised to int8 per output channel (ONNX Runtime's dynamic
  quantisation: activations are quantised per run, by their range). Vectors come out within a cosine
  of about 0.99 of the float32 ones, so only indexing uses int8.
- float32: the same vectors as PyTorch's up to rounding (within 2e-6), for the one or few short texts of
  a query: about twice as fast as PyTorch there (`benchmarks/bench_query_embedding.py`).
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

# How each precision's file is made, part of its cache key: change it when the export or quantisation does.
RECIPES = {"float32": "onnx-export-v1", "int8": "onnx-dynamic-int8-per-channel-v2-first-outputs-float32"}
CACHE_ENV = "HIPPOGRAPH_CACHE_DIR"
PRECISIONS = tuple(RECIPES)


class OnnxEncoder:
    """Runs a loaded SentenceTransformer's transformer through an ONNX Runtime session, one text per run.

    One text per run, because int8's dynamic quantisation scales each run's activations by their range:
    in a batch, a text's vector would depend on its batch-mates (cosine to its vector alone down to
    0.95), so a sharded index would differ from a single run. Alone, a text has no padding either, which
    makes a run as fast per text as a batch. int8 (indexing: thousands of texts) runs texts on a pool of
    threads, one per core (ONNX Runtime releases the GIL); float32 (a query: one text or a few) splits
    each run over the cores instead, which answers a single question soonest.
    """

    def __init__(self, model, dim: int, precision: str = "int8", cache_dir: Path | None = None, threads: int | None = None):
        import onnxruntime

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.model, self.dim, self.precision = model, dim, precision
        path = cached_onnx_file(model, cache_dir or default_cache_dir(), precision)
        self.threads = threads or torch.get_num_threads()
        self.parallel_texts = precision == "int8"
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # its warnings about the optimised graph are not the user's business
        options.intra_op_num_threads = 1 if self.parallel_texts else self.threads
        # Its threads would otherwise spin after each run, taking the cores from the query's next step
        # (on two cores, the PageRank right after a question's embedding slowed down several times).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.pooling = list(model)[1:]  # pooling, normalisation, any dense layer: run on each text's output
        self.mean_pooled = _is_mean_pooling_then_normalize(self.pooling)

    def encode(self, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 rows. `batch_size` texts are tokenised at a time (the tokenizer is not
        thread-safe, so the calling thread does it), then embedded one by one."""
        from tqdm.auto import tqdm

        rows = np.zeros((len(texts), self.dim), np.float32)
        with contextlib.ExitStack() as stack:
            bar = stack.enter_context(tqdm(total=len(texts), desc="Texts", disable=not progress))
            run = stack.enter_context(ThreadPoolExecutor(self.threads)).map if self.parallel_texts else map
            for start in range(0, len(texts), batch_size):
                chunk = texts[start : start + batch_size]
                rows[start : start + len(chunk)] = list(run(self._embed_one, self._unpadded(chunk)))
                bar.update(len(chunk))
        return rows

    def _unpadded(self, texts: list[str]) -> list[dict[str, np.ndarray]]:
        """Each text's model inputs as a batch of one, without the padding that tokenising together adds."""
        features = self.model.preprocess(texts)
        mask = features["attention_mask"].numpy().astype(bool)
        return [{name: features[name].numpy()[row, mask[row]][None, :] for name in self.input_names} for row in range(len(texts))]

    def _embed_one(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        hidden = self.session.run(None, inputs)[0]
        if self.mean_pooled:  # a text alone has no padding: the mean of its token rows
            vector = hidden[0].mean(axis=0)
        else:
            features = {"token_embeddings": torch.from_numpy(hidden), "attention_mask": torch.from_numpy(inputs["attention_mask"])}
            with torch.inference_mode():
                for module in self.pooling:
                    features = module(features)
            vector = features["sentence_embedding"][0].float().numpy()
        return vector / (np.linalg.norm(vector) or 1)


def _is_mean_pooling_then_normalize(modules: list) -> bool:
    """Whether the modules after the transformer are sentence-transformers' mean pooling then
    normalisation (all-MiniLM-L6-v2's, and most of its family's): numpy then does their work, since
    PyTorch's per-call overhead on one short text cost about 0.25 ms of CPU, 15% of an int8 phrase's
    embedding (any other module list runs as the model's own modules)."""
    if [type(module).__name__ for module in modules] != ["Pooling", "Normalize"]:
        return False
    pooling = modules[0]
    mode = getattr(pooling, "pooling_mode", None)  # sentence-transformers 6; earlier ones name it by a method
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):
        mode = pooling.get_pooling_mode_str()
    return mode == "mean" and getattr(pooling, "include_prompt", True)


def default_cache_dir() -> Path:
    """`HIPPOGRAPH_CACHE_DIR`, else the user's cache directory (`XDG_CACHE_HOME` or ~/.cache)/hippograph."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hippograph"


def cached_onnx_file(model, cache_dir: Path, precision: str = "int8") -> Path:
    """The ONNX file of `model` in `precision`, exported (and quantised) on first use. Written to a
    temporary name and renamed, so processes that race to make it never read a partial file."""
    target = cache_dir / f"{weights_digest(model, RECIPES[precision])}.{precision}.onnx"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        exported, quantised = Path(scratch, "model.onnx"), Path(scratch, "model.int8.onnx")
        export_transformer(model, exported)
        if precision == "int8":
            quantise(exported, quantised)
        os.replace(quantised if precision == "int8" else exported, target)
    return target


def weights_digest(model, recipe: str) -> str:
    """Names the model by what it computes: its weights, input names and the `recipe` of its file."""
    digest = hashlib.sha256(recipe.encode())
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
    """Dynamic int8 quantisation of the weights, one scale per output channel (per-tensor scales lose
    too much: cosine to float32 about 0.96 against 0.99), all but the first layer's two output products
    (see `_first_output_products`)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _without_root_warnings():  # it advises pre-processing on the root logger: the host app's log
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=_first_output_products(source))


def _first_output_products(path: Path) -> list[str]:
    """The first transformer layer's attention output and feed-forward output products, to keep in
    float32: their inputs (attention context, GELU activations) carry a few large values that stretch the
    one scale a run quantises them by, and the error they leave runs through every later layer. Found by
    the shapes of the constant weights, in graph order: the square product just before the first that
    widens (hidden to intermediate size), and the first that narrows (intermediate to hidden)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {tensor.name: tuple(tensor.dims) for tensor in graph.initializer}
    products = [(node.name, shapes[node.input[1]]) for node in graph.node
                if node.op_type == "MatMul" and len(shapes.get(node.input[1], ())) == 2]
    widening = next((i for i, (_, (rows, cols)) in enumerate(products) if rows < cols), None)
    narrowing = next((i for i, (_, (rows, cols)) in enumerate(products) if rows > cols), None)
    if widening is None or narrowing is None:
        return []
    before = products[widening - 1] if widening > 0 else None
    attention_output = [before[0]] if before and before[1][0] == before[1][1] else []
    return attention_output + [products[narrowing][0]]


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
