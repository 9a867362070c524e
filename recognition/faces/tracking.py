"""Turn per-frame detections into sightings: one person (or, later, one plate) passing a camera over many
sampled frames becomes one record, carrying the best-quality item and its crop (issue #5 §4, §3).

Frames are sampled at ~2 fps, so a walking person moves far between samples and box overlap alone loses
them; the tracker also associates by appearance (embedding cosine), and falls back to overlap for items
without one. It is generic over the item type: callers give functions for the box, the rank (which item
is the best evidence) and, optionally, an embedding. Plates can plug in their corner box, read confidence
and no embedding (or a text-similarity affinity through `affinity`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from jifang.recognition.faces.types import Face, face_rank

T = TypeVar("T")
Box = tuple[int, int, int, int]

__all__ = ["SightingTracker", "Track", "iou"]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(eq=False)
class Track(Generic[T]):
    """One pass of one subject. `best` is the highest-ranked item seen, `best_crop` its crop when the tracker
    was given frames and a cropper (so no frame has to be kept), `best_frame_index` the update() call it came
    from (0-based, counting every update since the tracker was made)."""

    track_id: int
    first_seen: float
    last_seen: float
    best: T
    best_rank: float
    best_time: float
    best_frame_index: int
    best_crop: np.ndarray | None = field(default=None, repr=False)
    frames: int = 1
    last: T | None = field(default=None, repr=False)  # most recent item: its box is where the subject is now

    @property
    def duration(self) -> float:
        return self.last_seen - self.first_seen


def _face_box(face: Face) -> Box:
    return face.box


def _face_embedding(face: Face) -> np.ndarray | None:
    return face.embedding


class SightingTracker(Generic[T]):
    """Greedy IoU/appearance tracker with end-of-sighting after `max_gap_seconds` unseen.

    Defaults fit faces (`Face` from the engine). For another item type pass `box` and `rank`, and either
    `embedding` (cosine similarity) or `affinity` (any 0..1 similarity between a new item and a track's last
    item), or neither (overlap only).

    An item joins a track when its box overlaps the track's last box by `iou_threshold`, or its embedding is
    at least `similarity_threshold` similar to the track's best or last one; but never when the appearance
    is known and below `min_appearance` (someone else stepping into the spot the last person left). Each
    track takes at most one item per frame (two faces in one frame are two people); the strongest pairs are
    taken first.
    """

    def __init__(
        self,
        max_gap_seconds: float = 2.0,
        *,
        iou_threshold: float = 0.3,
        similarity_threshold: float = 0.5,
        min_appearance: float = 0.2,
        box: Callable[[Any], Box] = _face_box,
        rank: Callable[[Any], float] = face_rank,
        embedding: Callable[[Any], np.ndarray | None] | None = _face_embedding,
        affinity: Callable[[Any, Any], float] | None = None,
        cropper: Callable[[np.ndarray, Any], np.ndarray] | None = None,
    ) -> None:
        if max_gap_seconds <= 0:
            raise ValueError("max_gap_seconds must be positive")
        self.max_gap_seconds = float(max_gap_seconds)
        self.iou_threshold = float(iou_threshold)
        # Same-person SFace similarities between nearby frames are ~0.7+; 0.5 keeps a margin over the
        # impostor maximum (~0.38) while tolerating pose change across a pass.
        self.similarity_threshold = float(similarity_threshold)
        # Different people score ~0.1-0.2 on median (bench), the same person in a blurred frame still ~0.3.
        self.min_appearance = float(min_appearance)
        self._box = box
        self._rank = rank
        self._embedding = embedding
        self._affinity = affinity
        self._cropper = cropper
        self._active: list[Track[T]] = []
        self._ids = itertools.count(1)
        self._frame_index = -1
        self._last_t: float | None = None

    @property
    def active(self) -> list[Track[T]]:
        """Sightings still open (seen within the gap)."""
        return list(self._active)

    def _appearance(self, item: T, track: Track[T]) -> float | None:
        """Similarity of an item to a track, None when there is nothing to compare."""
        if self._affinity is not None:
            return float(self._affinity(item, track.last if track.last is not None else track.best))
        if self._embedding is None:
            return None
        probe = self._embedding(item)
        if probe is None:
            return None
        sims = []
        for ref in (track.best, track.last):
            if ref is None:
                continue
            vec = self._embedding(ref)
            if vec is not None:
                denom = float(np.linalg.norm(probe) * np.linalg.norm(vec))
                sims.append(float(probe @ vec) / denom if denom > 0 else 0.0)
        return max(sims, default=None)

    def update(self, t: float, items: list[T], image: np.ndarray | None = None) -> list[Track[T]]:
        """Feed one frame's items at time `t` (seconds, non-decreasing); returns the sightings that ended,
        i.e. were not seen for more than `max_gap_seconds` before `t`. Give `image` (the frame) with a
        `cropper` to have each sighting keep the crop of its best item."""
        if self._last_t is not None and t < self._last_t:
            raise ValueError(f"time went backwards: {t} < {self._last_t}")
        self._last_t = t
        self._frame_index += 1

        ended = [s for s in self._active if t - s.last_seen > self.max_gap_seconds]
        self._active = [s for s in self._active if t - s.last_seen <= self.max_gap_seconds]

        pairs: list[tuple[float, int, int]] = []
        for i, item in enumerate(items):
            item_box = self._box(item)
            for j, track in enumerate(self._active):
                overlap = iou(item_box, self._box(track.last if track.last is not None else track.best))
                look = self._appearance(item, track)
                if look is not None and look < self.min_appearance:
                    continue
                if overlap >= self.iou_threshold or (look is not None and look >= self.similarity_threshold):
                    pairs.append((overlap + (look or 0.0), i, j))
        pairs.sort(reverse=True)
        used_items: set[int] = set()
        used_tracks: set[int] = set()
        for _, i, j in pairs:
            if i in used_items or j in used_tracks:
                continue
            used_items.add(i)
            used_tracks.add(j)
            self._extend(self._active[j], t, items[i], image)
        for i, item in enumerate(items):
            if i not in used_items:
                self._active.append(self._start(t, item, image))
        return ended

    def flush(self) -> list[Track[T]]:
        """End and return every open sighting (stream stopped, or shutdown)."""
        ended, self._active = self._active, []
        return ended

    def _crop(self, image: np.ndarray | None, item: T) -> np.ndarray | None:
        if image is None or self._cropper is None:
            return None
        return self._cropper(image, item)

    def _start(self, t: float, item: T, image: np.ndarray | None) -> Track[T]:
        return Track(
            track_id=next(self._ids),
            first_seen=t,
            last_seen=t,
            best=item,
            best_rank=float(self._rank(item)),
            best_time=t,
            best_frame_index=self._frame_index,
            best_crop=self._crop(image, item),
            frames=1,
            last=item,
        )

    def _extend(self, track: Track[T], t: float, item: T, image: np.ndarray | None) -> None:
        track.last_seen = t
        track.frames += 1
        track.last = item
        rank = float(self._rank(item))
        if rank > track.best_rank:
            track.best = item
            track.best_rank = rank
            track.best_time = t
            track.best_frame_index = self._frame_index
            track.best_crop = self._crop(image, item)
