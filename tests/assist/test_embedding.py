"""The sentence encoder runs only the model and tokenizer files it was checked with."""
from __future__ import annotations

import numpy as np
import pytest

from annotate.assist import embedding


def test_similar_texts_are_closer_than_unrelated_ones():
    vectors = embedding.encoder().encode(["a wonderful, moving film", "a great and touching movie",
                                          "the invoice is due on monday"])
    assert vectors.shape == (3, embedding.DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_a_model_file_with_other_bytes_is_refused(monkeypatch):
    monkeypatch.setitem(embedding.SHA256, "model.onnx", "0" * 64)
    with pytest.raises(embedding.EncoderMissing, match="SHA-256 differs"):
        embedding.Encoder()
