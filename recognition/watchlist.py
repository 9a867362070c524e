"""Watchlists: vehicles by plate (exact, or one OCR-confusable character off) and people by face
(cosine similarity to several enrolled embeddings). Each entry carries its Appendix A category, reason,
owner and expiry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select

from jifang.db import Catalog
from jifang.db.models import WatchlistEmbedding, WatchlistEntry
from jifang.errors import ConfigError
from jifang.incidents import category_problem

# characters OCR confuses on Chinese plates (both directions)
CONFUSABLE = {frozenset(pair) for pair in ("0D", "0Q", "DQ", "8B", "2Z", "5S", "6G", "1T", "4A", "7T", "UV")}


@dataclass(frozen=True)
class Hit:
    entry: WatchlistEntry
    similarity: float  # cosine for faces, 1.0 exact / 0.9 fuzzy for plates
    fuzzy: bool = False


def plate_distance_ok(read: str, listed: str) -> bool:
    """Equal, or equal but for one position whose two characters OCR confuses."""
    if len(read) != len(listed):
        return False
    differences = [(a, b) for a, b in zip(read, listed, strict=True) if a != b]
    return len(differences) == 1 and frozenset(differences[0]) in CONFUSABLE


class Watchlist:
    """Matching runs per frame: it works on a snapshot of the active entries and their embeddings, read from the
    database at most every ``refresh_seconds`` (entries added by another process appear within that time)."""

    def __init__(self, catalog: Catalog, refresh_seconds: float = 5.0) -> None:
        self.catalog = catalog
        self.refresh_seconds = refresh_seconds
        self._snapshot: tuple[float, list[WatchlistEntry], list[tuple[WatchlistEntry, np.ndarray]]] | None = None

    def add(self, *, kind: str, name: str, category: str, subcategory: str, reason: str, owner: str, at: datetime,
            plate: str = "", embeddings: list[tuple[np.ndarray, str]] | None = None,
            expires_at: datetime | None = None) -> WatchlistEntry:
        if kind not in ("plate", "face"):
            raise ConfigError(f"kind must be plate or face, got {kind!r}")
        problem = category_problem(category, subcategory)
        if problem:
            raise ConfigError(problem)
        if kind == "plate" and not plate:
            raise ConfigError("a plate entry needs --plate")
        if kind == "face" and not embeddings:
            raise ConfigError("a face entry needs at least one --image with exactly one face")
        with self.catalog.session() as session:
            entry = WatchlistEntry(kind=kind, name=name, plate=plate, category=category, subcategory=subcategory,
                                   reason=reason, owner=owner, created_at=at, expires_at=expires_at, active=True)
            session.add(entry)
            session.flush()
            for vector, source in embeddings or []:
                unit = np.asarray(vector, dtype=np.float32)
                unit = unit / (np.linalg.norm(unit) or 1.0)
                session.add(WatchlistEmbedding(entry_id=entry.id, vector=unit.tobytes(), source=source))
            session.commit()
        self._snapshot = None
        return entry

    def entries(self, kind: str | None = None, at: datetime | None = None) -> list[WatchlistEntry]:
        with self.catalog.session() as session:
            query = select(WatchlistEntry).where(WatchlistEntry.active.is_(True)).order_by(WatchlistEntry.id)
            if kind:
                query = query.where(WatchlistEntry.kind == kind)
            rows = list(session.scalars(query))
        return [r for r in rows if at is None or r.expires_at is None or r.expires_at > at]

    def _current(self) -> tuple[list[WatchlistEntry], list[tuple[WatchlistEntry, np.ndarray]]]:
        now = time.monotonic()
        if self._snapshot is None or now - self._snapshot[0] > self.refresh_seconds:
            entries = self.entries()
            faces = {e.id: e for e in entries if e.kind == "face"}
            with self.catalog.session() as session:
                rows = list(session.scalars(select(WatchlistEmbedding).where(
                    WatchlistEmbedding.entry_id.in_(list(faces)))))
            gallery = [(faces[r.entry_id], np.frombuffer(r.vector, dtype=np.float32)) for r in rows]
            self._snapshot = (now, entries, gallery)
        return self._snapshot[1], self._snapshot[2]

    @staticmethod
    def _live(entry: WatchlistEntry, at: datetime) -> bool:
        return entry.expires_at is None or entry.expires_at > at

    def match_plate(self, text: str, at: datetime, fuzzy: bool = True) -> Hit | None:
        candidates = [e for e in self._current()[0] if e.kind == "plate" and self._live(e, at)]
        for entry in candidates:
            if entry.plate == text:
                return Hit(entry, 1.0)
        if fuzzy:
            for entry in candidates:
                if plate_distance_ok(text, entry.plate):
                    return Hit(entry, 0.9, fuzzy=True)
        return None

    def gallery(self, at: datetime) -> list[tuple[WatchlistEntry, np.ndarray]]:
        return [(entry, vector) for entry, vector in self._current()[1] if self._live(entry, at)]

    def match_face(self, embedding: np.ndarray, at: datetime, threshold: float) -> Hit | None:
        unit = np.asarray(embedding, dtype=np.float32)
        unit = unit / (np.linalg.norm(unit) or 1.0)
        best: Hit | None = None
        for entry, vector in self.gallery(at):
            similarity = float(np.dot(unit, vector))
            if similarity >= threshold and (best is None or similarity > best.similarity):
                best = Hit(entry, similarity)
        return best
