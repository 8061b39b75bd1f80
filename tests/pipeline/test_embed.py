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
