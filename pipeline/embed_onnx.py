"""ONNX Runtime inference of a sentence-transformers model: int8 for the bulk of indexing, float32 for
questions.

The model's transformer is exported to ONNX once and cached on disk, keyed by its weights, so later
processes load it in a moment. Pooling and normalisation are the model's own sentence-transformers
modules (numpy's mean where those are mean pooling and normalisation), so any model of that family
works. No indexed text's vector depends on the texts embedded with it, and a query's by rounding
only (see `OnnxEncoder`).

- int8: most CPUs have no bf16 units but all recent ones multiply int8 quickly (AVX2, AVX512-VNNI,
  AVX-VNNI, AMX). The weights are quantised to int8 per output channel (ONNX Runtime's dynamic
  quantisation), the activations per token, by their range (`quantise_activations_per_token`). Vectors
  come out within a cosine of about 0.997 of the float32 ones, and only indexing uses int8.
- float32: the same vectors as PyTorch's up to rounding (within 2e-6), for the one or few short texts of
  a query: about twice as fast as PyTorch there (`benchmarks/bench_query_embedding.py`). A query's texts
  (a question and the names it links, or a round of clues) share one run, packed one after another with
  an attention mask that keeps each text to itself: a run reads every weight of the model, and a run of a
  few word pieces costs little more than that read (`benchmarks/results/packed_query_texts_*.md`).
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

logger = logging.getLogger(__name__)

# How each precision's file is made, part of its cache key: change it when the export or quantisation does.
RECIPES = {"float32": "onnx-export-packed-v2", "int8": "onnx-dynamic-int8-per-channel-v3-first-outputs-float32-per-token"}
CACHE_ENV = "HIPPOGRAPH_CACHE_DIR"
PRECISIONS = tuple(RECIPES)
TEXTS_PER_RUN = 64  # texts of one length in one int8 run, at most
# word pieces in one int8 run, at most: long texts gain nothing from sharing a run, and ONNX Runtime's
# memory arena keeps room for the largest run it saw (passages in uncapped runs took the 2wiki index's
# peak from 2.1 to 2.9 GB: benchmarks/results/index_2wiki_epyc_avx512_auto.md, its notes)
TOKENS_PER_RUN = 1024
GROUPING_WINDOW = 4096  # texts tokenised before grouping: bounds what waits in memory
PACKED_TOKENS = 256  # word pieces of a float32 run that packs a query's texts, at most
ACTIVATIONS_KEY, PER_TOKEN = "hippograph.activations", "per-token"  # written in an int8 file's metadata


class OnnxEncoder:
    """Runs a loaded SentenceTransformer's transformer through an ONNX Runtime session.

    A text's vector must not depend on the texts embedded with it, or a sharded index would differ from
    a single run. The int8 model quantises each token by its own range (see `quantise`), so texts of one
    length share a run, unpadded, up to `TEXTS_PER_RUN` of them: a run of many short texts uses the int8
    products far better than one of a few tokens. Runs go to a pool of threads, one per core (ONNX
    Runtime releases the GIL). float32 (a query: one text or a few) runs split over the cores, which
    answers a single question soonest; `encode(..., pack=True)` packs texts into shared runs (see
    `export_transformer`), where a text's vector moves by rounding only (about 1e-7) with its neighbours,
    so indexing in float32 runs each text alone.
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
        # Its threads spin while a run lasts (waking them for each of the model's many small operators cost
        # a query's embedding about 15% of its time) and stop when the run returns: threads left spinning
        # take the cores from the query's next step (on two cores, the PageRank after a question's
        # embedding slowed down several times). benchmarks/results/query_spinning_avx512.md
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.pooling = list(model)[1:]  # pooling, normalisation, any dense layer: run on each text's output
        self.mean_pooled = _is_mean_pooling_then_normalize(self.pooling)
        metadata = self.session.get_modelmeta().custom_metadata_map
        # texts share a run only where no scale spans the run (a file quantised per token)
        self.texts_per_run = TEXTS_PER_RUN if metadata.get(ACTIVATIONS_KEY) == PER_TOKEN else 1
        self.packs = "segment_ids" in self.input_names  # a file exported for packed runs (float32)

    def encode(self, texts: list[str], batch_size: int, progress: bool = False, pack: bool = False) -> np.ndarray:
        """L2-normalised float32 rows. `batch_size` texts are tokenised at a time (the tokenizer is not
        thread-safe, so the calling thread does it); texts of one length then share runs, up to
        `texts_per_run`, within windows of `GROUPING_WINDOW` texts. `pack`: a packed file's texts share
        runs of up to `PACKED_TOKENS` word pieces, in order (else each runs alone)."""
        if self.packs:
            return self._encode_packed(texts, batch_size, progress, PACKED_TOKENS if pack else 0)
        from tqdm.auto import tqdm

        rows = np.zeros((len(texts), self.dim), np.float32)
        window = GROUPING_WINDOW if self.texts_per_run > 1 else batch_size
        with contextlib.ExitStack() as stack:
            bar = stack.enter_context(tqdm(total=len(texts), desc="Texts", disable=not progress))
            run = stack.enter_context(ThreadPoolExecutor(self.threads)).map if self.parallel_texts else map
            for start in range(0, len(texts), window):
                inputs = [one for first in range(start, min(start + window, len(texts)), batch_size)
                          for one in self._unpadded(texts[first : min(first + batch_size, start + window)])]
                groups = self._same_length_runs(inputs)
                for (indices, _), vectors in zip(groups, run(self._embed_run, [feed for _, feed in groups])):
                    rows[start + indices] = vectors
                bar.update(len(inputs))
        return rows

    def _encode_packed(self, texts: list[str], batch_size: int, progress: bool, run_tokens: int) -> np.ndarray:
        """Texts packed in order into runs of up to `run_tokens` word pieces (a longer text runs alone)."""
        from tqdm.auto import tqdm

        rows = np.zeros((len(texts), self.dim), np.float32)
        with tqdm(total=len(texts), desc="Texts", disable=not progress) as bar:
            for start in range(0, len(texts), batch_size):
                ids = [one["input_ids"][0] for one in self._unpadded(texts[start : start + batch_size])]
                first = 0
                while first < len(ids):
                    end, length = first + 1, len(ids[first])
                    while end < len(ids) and length + len(ids[end]) <= run_tokens:
                        length += len(ids[end])
                        end += 1
                    rows[start + first : start + end] = self._packed_run(ids[first:end])
                    bar.update(end - first)
                    first = end
        return rows

    def _packed_run(self, texts_ids: list[np.ndarray]) -> np.ndarray:
        """The vectors of texts (their word-piece ids) run as one sequence, each attending to itself only."""
        lengths = [len(ids) for ids in texts_ids]
        feed = {
            "input_ids": np.concatenate(texts_ids)[None, :],
            "segment_ids": np.repeat(np.arange(len(lengths)), lengths)[None, :],
            "position_ids": np.concatenate([np.arange(n) for n in lengths])[None, :],
        }
        hidden = self.session.run(None, feed)[0][0]
        pieces = np.split(hidden, np.cumsum(lengths)[:-1])
        return np.concatenate([self._pooled(piece[None], np.ones((1, len(piece)), np.int64)) for piece in pieces])

    def _same_length_runs(self, inputs: list[dict[str, np.ndarray]]) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Texts (their unpadded inputs) grouped by length into runs of up to `texts_per_run` texts and
        `TOKENS_PER_RUN` word pieces: each run's positions among `inputs` and its stacked inputs."""
        by_length: dict[int, list[int]] = {}
        for position, one in enumerate(inputs):
            by_length.setdefault(one["input_ids"].shape[1], []).append(position)
        runs = []
        for length, positions in by_length.items():
            per_run = max(1, min(self.texts_per_run, TOKENS_PER_RUN // length))
            for first in range(0, len(positions), per_run):
                members = positions[first : first + per_run]
                feed = {name: np.concatenate([inputs[i][name] for i in members]) for name in self.input_names}
                runs.append((np.array(members), feed))
        return runs

    def _unpadded(self, texts: list[str]) -> list[dict[str, np.ndarray]]:
        """Each text's tokenizer inputs as a batch of one, without the padding that tokenising together adds
        (a packed file takes the word-piece ids only)."""
        features = self.model.preprocess(texts)
        mask = features["attention_mask"].numpy().astype(bool)
        names = ["input_ids"] if self.packs else self.input_names
        return [{name: features[name].numpy()[row, mask[row]][None, :] for name in names} for row in range(len(texts))]

    def _embed_run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The vectors of one run's texts, all of one length (no padding)."""
        return self._pooled(self.session.run(None, inputs)[0], inputs["attention_mask"])

    def _pooled(self, hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Normalised vectors of texts from their token rows (texts, tokens, dim), all tokens real."""
        if self.mean_pooled:  # no padding: the mean of each text's token rows
            vectors = hidden.mean(axis=1)
        else:
            features = {"token_embeddings": torch.from_numpy(hidden), "attention_mask": torch.from_numpy(attention_mask)}
            with torch.inference_mode():
                for module in self.pooling:
                    features = module(features)
            vectors = features["sentence_embedding"].float().numpy()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)


def _is_mean_pooling_then_normalize(modules: list) -> bool:
    """Whether the modules after the transformer are sentence-transformers' mean pooling then
    normalisation (all-MiniLM-L6-v2's, and most of its family's): numpy then does their work, since
    PyTorch's per-call overhead cost a short int8 text about 14% of its embedding time in a run of its
    own, 2% in shared runs (`benchmarks/bench_embed_overheads.py`). Any other module list runs as the
    model's own modules."""
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
        export_transformer(model, exported, packed=precision == "float32")
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


def export_transformer(model, path: Path, packed: bool = False) -> None:
    """The transformer module to ONNX, token embeddings out, batch and sequence length left free.

    `packed`: inputs are word-piece ids, a segment id and a position (from 0) per word piece, and a word
    piece attends to those of its own segment only; so texts packed one after another into one sequence
    each get their own token embeddings (what `OnnxEncoder._packed_run` feeds). A model that numbers
    positions otherwise (from its padding index, as RoBERTa does) fails the check of
    `hippograph.pipeline.embed` and keeps PyTorch."""
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in model.preprocess(["x"])]
    if packed:
        transformer = _PackedTokenEmbeddings(model[0].auto_model, "token_type_ids" in names).eval()
        names = ["input_ids", "segment_ids", "position_ids"]
        example = (torch.ones((1, 9), dtype=torch.long), torch.tensor([[0, 0, 0, 0, 1, 1, 1, 2, 2]]),
                   torch.tensor([[0, 1, 2, 3, 0, 1, 2, 0, 1]]))
    else:
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
    """The int8 file: weights quantised (`quantise_weights`), then activations per token
    (`quantise_activations_per_token`)."""
    quantise_weights(source, target)
    quantise_activations_per_token(target)


def quantise_weights(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weights, one scale per output channel (per-tensor scales lose
    too much: cosine to float32 about 0.96 against 0.99), all but the first layer's two output products
    (see `_first_output_products`); its activations keep ONNX Runtime's one scale per run."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _without_root_warnings():  # it advises pre-processing on the root logger: the host app's log
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=_first_output_products(source))


def quantise_activations_per_token(path: Path) -> None:
    """Rewrite ONNX Runtime's dynamic quantisation of activations, one scale for a whole run, into one
    scale per token: each row of a product's input is quantised by its own largest magnitude, around
    128 (uint8, so ONNX Runtime's fast uint8-by-int8 products serve). A text's vector then depends on
    nothing else in its run, so texts of one length can share a run; and a token of small values keeps
    its precision (mean cosine to float32 0.994-0.995 before, 0.996-0.997 after:
    `benchmarks/results/int8_fidelity_avx512.md`). The row scales multiply each product's float output after
    the weights' scales, so ONNX Runtime still fuses the product with its (now constant) run scale. A
    graph of another shape is left as it was, and its texts keep one run each (`OnnxEncoder`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    row_scale: dict[str, str] = {}  # quantised input -> its row scales
    rewritten = []
    for node in graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            rewritten.append(node)
            continue
        source, (quantised, scale, zero_point) = node.input[0], node.output
        rows = f"{node.name}_row"
        rewritten += [
            helper.make_node("Abs", [source], [f"{rows}_abs"]),
            helper.make_node("ReduceMax", [f"{rows}_abs"], [f"{rows}_max"], axes=[-1], keepdims=1),
            helper.make_node("Max", [f"{rows}_max", "per_token_tiny"], [f"{rows}_max_safe"]),
            helper.make_node("Div", [f"{rows}_max_safe", "per_token_127"], [f"{rows}_scale"]),
            helper.make_node("Div", [source, f"{rows}_scale"], [f"{rows}_scaled"]),
            helper.make_node("Round", [f"{rows}_scaled"], [f"{rows}_rounded"]),
            helper.make_node("Add", [f"{rows}_rounded", "per_token_128"], [f"{rows}_shifted"]),
            helper.make_node("Clip", [f"{rows}_shifted", "per_token_0", "per_token_255"], [f"{rows}_clipped"]),
            helper.make_node("Cast", [f"{rows}_clipped"], [quantised], to=TensorProto.UINT8),
            helper.make_node("Identity", ["per_token_one"], [scale]),
            helper.make_node("Identity", ["per_token_zero_point"], [zero_point]),
        ]
        row_scale[quantised] = f"{rows}_scale"
    # each product's output (MatMulInteger -> Cast -> Mul by the scales), times its row scales
    row_scaling = {}  # the Mul that applies a product's scales -> the Mul to add after it
    for node in rewritten:
        if node.op_type == "MatMulInteger" and node.input[0] in row_scale:
            cast = consumers.get(node.output[0], [])
            scaled = consumers.get(cast[0].output[0], []) if len(cast) == 1 and cast[0].op_type == "Cast" else []
            if len(scaled) != 1 or scaled[0].op_type != "Mul":
                logger.debug("int8 graph of an unexpected shape: activations keep one scale per run")
                return
            output = scaled[0].output[0]
            scaled[0].output[0] = f"{output}_before_row_scales"
            row_scaling[id(scaled[0])] = helper.make_node(
                "Mul", [f"{output}_before_row_scales", row_scale[node.input[0]]], [output])
    ordered = []
    for node in rewritten:
        ordered += [node, row_scaling[id(node)]] if id(node) in row_scaling else [node]
    constants = {"per_token_tiny": (1e-12, np.float32), "per_token_127": (127.0, np.float32),
                 "per_token_128": (128.0, np.float32), "per_token_0": (0.0, np.float32),
                 "per_token_255": (255.0, np.float32), "per_token_one": (1.0, np.float32),
                 "per_token_zero_point": (128, np.uint8)}
    graph.initializer.extend(numpy_helper.from_array(np.array(value, kind), name) for name, (value, kind) in constants.items())
    del graph.node[:]
    graph.node.extend(ordered)
    mark = model.metadata_props.add()
    mark.key, mark.value = ACTIVATIONS_KEY, PER_TOKEN
    onnx.save(model, str(path))


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


class _PackedTokenEmbeddings(torch.nn.Module):
    """The Hugging Face model over texts packed into one sequence: a mask keeps each segment to itself."""

    def __init__(self, auto_model, token_types: bool):
        super().__init__()
        self.auto_model, self.token_types = auto_model, token_types

    def forward(self, input_ids, segment_ids, position_ids):
        own_segment = (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]  # (batch, 1, query, key)
        extra = {"token_type_ids": torch.zeros_like(input_ids)} if self.token_types else {}
        return self.auto_model(input_ids=input_ids, attention_mask=own_segment, position_ids=position_ids, **extra).last_hidden_state
