"""Any `hippograph` command with query-time texts (questions, their phrases, clues) embedded by the int8
model that indexing uses, instead of float32: to measure what int8 questions would cost in recall.

    python benchmarks/ablation_query_int8.py eval --corpus C --questions Q --modes dense,hipporag --db STORE

Run the same command with `hippograph` for the float32 baseline, on the same store.
"""

from __future__ import annotations

import sys

import numpy as np

from hippograph.cli import main
from hippograph.pipeline import embed


def encode_in_int8(self: embed.Embedder, texts, progress: bool = False, batch_size: int | None = None) -> np.ndarray:
    if not texts:  # encode_corpus hands empty lists back to encode
        return np.zeros((0, self.dim), dtype=np.float32)
    return self.encode_corpus(texts, progress, batch_size)


if __name__ == "__main__":
    embed.Embedder.encode = encode_in_int8
    sys.exit(main())
