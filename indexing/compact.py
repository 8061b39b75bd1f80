"""Compact vectors: unit vectors held as two int8 codes a row, half the bytes of float32, cosines within
about 1e-5 of float32's. NumPy only, so the store can fill them while it reads (see `Store.read_graph_data`);
`hippograph.indexing.cosine.CosineIndex` scans them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Rows encoded or decoded at a time: a few MB of float64, never a float copy of every row.
BLOCK_ROWS = 4096


@dataclass(frozen=True)
class CompactVectors:
    """Rows as two int8 codes: row ≈ scales·codes + residual_scales·residual, each with a per-row
    symmetric scale (the largest magnitude / 127). The first code alone gives a cosine within about 1e-3,
    both within about 1e-5: 2·dim + 16 bytes a row instead of float32's 4·dim.

    `bounds[i]` = |residual_scales[i]·residual[i]| bounds what the residual adds to the cosine with a
    unit query; `code_norms[i]` = |scales[i]·codes[i]| bounds the error of scanning with a quantised
    query (both rounded up). A row that was not finite has NaN scales, so its cosines are NaN."""

    codes: np.ndarray  # (n, dim) int8
    scales: np.ndarray  # (n,) float32
    residual: np.ndarray  # (n, dim) int8
    residual_scales: np.ndarray  # (n,) float32
    bounds: np.ndarray  # (n,) float32
    code_norms: np.ndarray  # (n,) float32

    @staticmethod
    def allocate(rows: int, dim: int) -> "CompactVectors":
        """Room for `rows` zero rows, to fill with `put` (so a reader never holds every row in float32)."""
        return CompactVectors(
            np.zeros((rows, dim), np.int8), np.ones(rows, np.float32), np.zeros((rows, dim), np.int8),
            np.ones(rows, np.float32), np.zeros(rows, np.float32), np.zeros(rows, np.float32),
        )

    @staticmethod
    def encode(vectors: np.ndarray) -> "CompactVectors":
        """The compact form of a (rows, dim) matrix."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a (rows, dim) matrix, not of shape {vectors.shape}")
        compact = CompactVectors.allocate(*vectors.shape)
        for start in range(0, len(vectors), BLOCK_ROWS):
            block = vectors[start : start + BLOCK_ROWS]
            compact.put(np.arange(start, start + len(block)), block)
        return compact

    def put(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Encode `vectors` into `rows` (indices, one per vector)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        finite = np.isfinite(vectors).all(axis=1)
        if not finite.all():
            vectors = np.where(finite[:, None], vectors, np.float32(0))
        codes, scales = quantize(vectors)
        residual, residual_scales = quantize(vectors - codes * scales[:, None])
        self.codes[rows], self.residual[rows] = codes, residual
        self.scales[rows] = np.where(finite, scales, np.float32(np.nan))
        self.residual_scales[rows] = residual_scales
        self.bounds[rows] = _norms_bound(residual, residual_scales)
        self.code_norms[rows] = _norms_bound(codes, scales)

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def dim(self) -> int:
        return self.codes.shape[1]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.codes, self.scales, self.residual, self.residual_scales, self.bounds, self.code_norms))

    def decoded(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The float64 vectors of `rows`, from both codes."""
        return (self.codes[rows] * self.scales[rows, None].astype(np.float64)
                + self.residual[rows] * self.residual_scales[rows, None].astype(np.float64))


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8 codes and float32 scales of finite vectors (a zero row: scale 1, zero codes)."""
    peaks = np.abs(vectors).max(axis=1) if vectors.shape[1] else np.zeros(len(vectors), np.float32)
    scales = np.where(peaks > 0, peaks / np.float32(127), np.float32(1)).astype(np.float32)
    codes = np.rint(vectors / scales[:, None])
    return np.clip(codes, -127, 127, out=codes).astype(np.int8), scales


def _norms_bound(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """|scales[i]·codes[i]| for each row, rounded up: the sum of squared int8 codes is exact in float32
    (an integer below 2^24), its square root and the product by the scale round by a unit of 2^-24 each,
    so 1e-4 more is an upper bound."""
    norms = np.sqrt(np.einsum("ij,ij->i", codes, codes, dtype=np.float32)) * scales
    return (norms * np.float32(1 + 1e-4)).astype(np.float32)
