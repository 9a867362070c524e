"""Face watchlist matching by cosine similarity of embeddings (issue #5 §5)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

# Chosen by bench/recognition_bench_faces.py on the SCRFD-2.5G + SFace pack as the midpoint of the gap
# between impostor and genuine similarities: genuine (Obama enrolled from obama.jpg, Biden from biden.jpg,
# their 9 other faces) 0.633..0.971; impostor (502 pairs: them vs everyone else, the 29 Solvay faces and the
# 6 faces of t1.jpg among themselves) at most 0.444; midpoint 0.538. SFace's published 0.363 is too low
# here: 18 of those impostor pairs reach it.
DEFAULT_MATCH_THRESHOLD = 0.54


def _unit(vec: np.ndarray) -> np.ndarray:
    vec = np.asarray(vec, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vec))
    if norm == 0.0 or not np.isfinite(norm):
        raise ValueError("embedding must be a finite, non-zero vector")
    return vec / norm


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (normalised here, so raw model outputs are fine too)."""
    ua, ub = _unit(a), _unit(b)
    if ua.shape != ub.shape:
        raise ValueError(f"embeddings differ in dimension: {ua.shape[0]} vs {ub.shape[0]}")
    return float(ua @ ub)


class Match(NamedTuple):
    name: str
    similarity: float


class FaceGallery:
    """Enrolled people, several embeddings each.

    A person's score is the max over their embeddings, not the mean of them: enrolment photos differ in pose
    and light, and a probe only needs to resemble one of them. Embeddings are kept stacked in one matrix so
    a probe costs one matrix-vector product however many people are enrolled.
    """

    def __init__(self, dimension: int | None = None) -> None:
        self.dimension = dimension
        self._names: list[str] = []  # one per row of _matrix
        self._matrix = np.empty((0, dimension or 0), dtype=np.float32)

    def enroll(self, name: str, embeddings: np.ndarray | Iterable[np.ndarray]) -> int:
        """Add one embedding (1-d) or several (2-d array or iterable) for `name`; returns how many it now has."""
        if not name:
            raise ValueError("a person needs a name")
        arr = np.asarray(embeddings if isinstance(embeddings, np.ndarray) else list(embeddings), dtype=np.float32)
        rows = arr.reshape(1, -1) if arr.ndim == 1 else arr
        if rows.ndim != 2 or rows.shape[0] == 0:
            raise ValueError("no embedding given")
        if self.dimension is None:
            self.dimension = int(rows.shape[1])
            self._matrix = np.empty((0, self.dimension), dtype=np.float32)
        if rows.shape[1] != self.dimension:
            # Embeddings of different models are not comparable; mixing them would give silent garbage.
            raise ValueError(f"embedding dimension {rows.shape[1]} != gallery dimension {self.dimension}")
        units = np.stack([_unit(r) for r in rows])
        self._matrix = np.vstack([self._matrix, units])
        self._names.extend([name] * len(units))
        return self._names.count(name)

    def remove(self, name: str) -> int:
        """Forget a person; returns how many embeddings were dropped."""
        keep = [i for i, n in enumerate(self._names) if n != name]
        dropped = len(self._names) - len(keep)
        self._matrix = self._matrix[keep]
        self._names = [self._names[i] for i in keep]
        return dropped

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(self._names))

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def embeddings(self, name: str) -> np.ndarray:
        return self._matrix[[i for i, n in enumerate(self._names) if n == name]]

    def scores(self, embedding: np.ndarray) -> dict[str, float]:
        """Each enrolled person's similarity to the probe (max over their embeddings)."""
        if not self._names:
            return {}
        probe = _unit(embedding)
        if probe.shape[0] != self.dimension:
            raise ValueError(f"probe dimension {probe.shape[0]} != gallery dimension {self.dimension}")
        sims = self._matrix @ probe
        best: dict[str, float] = {}
        for name, sim in zip(self._names, sims.tolist(), strict=True):
            if sim > best.get(name, -2.0):
                best[name] = sim
        return best

    def match(self, embedding: np.ndarray, threshold: float = DEFAULT_MATCH_THRESHOLD) -> Match | None:
        """The most similar enrolled person if their similarity reaches `threshold`, else None."""
        scores = self.scores(embedding)
        if not scores:
            return None
        name, sim = max(scores.items(), key=lambda kv: kv[1])
        return Match(name, sim) if sim >= threshold else None
