"""Embedding matrices as Arrow columns and back: how vectors travel to DuckDB and into shard files."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def vector_column(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """An (n, dim) matrix as n fixed-size float32 lists (DuckDB reads them as FLOAT[dim])."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])


def matrix_from_column(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The (n, dim) float32 matrix of a column of equal-length float lists; (0, 0) when empty."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return array.values.to_numpy(zero_copy_only=False).reshape(len(array), -1).astype(np.float32, copy=False)
