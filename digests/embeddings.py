"""The embedder port and the two embedders that need no network: the packaged local model
and a dependency-free hashing embedder. (The OpenAI-compatible one lives in adapters/.)"""

import hashlib
import os
import re
import threading
from typing import Protocol

import numpy as np

from digests.models import named_model, verified_path


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class HashingEmbedder:
    """Word and character n-grams hashed into a fixed space: no model, no download, instant.
    Good enough to run the pipeline anywhere; the local model themes far better."""

    name = "hashing"

    def __init__(self, dimension: int = 1024):
        self.dimension = dimension

    def _features(self, text: str) -> list[str]:
        words = re.findall(r"[a-z0-9']+", text.lower())
        grams = [f"w:{w}" for w in words]
        grams += [f"b:{a}_{b}" for a, b in zip(words, words[1:], strict=False)]
        for word in words:
            padded = f"<{word}>"
            grams += [f"c:{padded[i : i + 4]}" for i in range(max(1, len(padded) - 3))]
        return grams

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for gram in self._features(text):
                digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dimension
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        return normalise(out)


class LocalEmbedder:
    """A sentence-transformers model on the CPU, loaded once per process on first use: a named
    model (`minilm`, the default, or `mpnet`; digests/models.py), its weights checked against their
    pinned sha256, or any other sentence-transformers name or local path."""

    def __init__(self, model: str = "", batch_size: int = 64):
        self.model_ref = model
        self.named = named_model(model)
        # The name tells one model's vectors from another's and picks the thresholds (digests/themes.py).
        self.name = f"local:{self.named.name if self.named else model}"
        # Another model's size is known once it is loaded (0 until then, as for OpenAI).
        self.dimension = self.named.dimension if self.named else 0
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                # Never reach for a model hub: the model comes from a package or a local path.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                source = str(verified_path(self.named)) if self.named else self.model_ref
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(source, device="cpu")
                self.dimension = self._model.get_embedding_dimension()
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._load().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return normalise(vectors)
