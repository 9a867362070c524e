"""Face pipeline on the edge: detection + embedding (insightface on a local model pack), quality filter,
watchlist matching and sighting tracking (issue #5 §4-5).

Importing this package is cheap; the heavy modules (insightface, onnxruntime) load only with `engine`.
"""

from jifang.recognition.faces.matching import DEFAULT_MATCH_THRESHOLD, FaceGallery, Match, cosine
from jifang.recognition.faces.tracking import SightingTracker, Track
from jifang.recognition.faces.types import Face, Quality, QualityPolicy

__all__ = [
    "DEFAULT_MATCH_THRESHOLD",
    "Face",
    "FaceGallery",
    "Match",
    "Quality",
    "QualityPolicy",
    "SightingTracker",
    "Track",
    "cosine",
]
