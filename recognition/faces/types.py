"""Plain data of the face pipeline. Kept apart from `engine` so that matching, tracking and their callers
(watchlists, incidents, tests) do not import insightface/onnxruntime just to handle results."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class QualityPolicy:
    """When a face is good enough to match and to keep as evidence.

    Defaults checked on the SCRFD-2.5G + SFace pack (bench/recognition_bench_faces.py). Every face of the
    sample photos passes except a near-profile one in t1.jpg. Size: below ~40 px the 112 px aligned crop is
    mostly upsampling (a clean photo still matched at 20-30 px, 0.65-0.71, but camera noise and compression
    are not that kind). Blur (variance of the Laplacian of the aligned crop): the real faces measure 37 and
    up; Gaussian blur of 2 % of the face width gives 36 (similarity to the enrolment 0.72 vs 0.75 sharp), 4 %
    gives 10 (0.63), 8 % gives 4 (0.32, lost), so 25 flags crops on their way to useless. Pose: yaw_ratio is about
    tan(yaw) for a nose standing out half the eye distance, so 0.6 is a turn of roughly 30-35 degrees; the
    frontal and three-quarter faces measured within 0.52, the near-profile one 1.2.
    """

    min_size: int = 40
    min_blur: float = 25.0
    max_abs_yaw: float = 0.6


@dataclass(frozen=True)
class Quality:
    """Quality measures of one detected face; `ok` is the policy's verdict, `reasons` why it failed."""

    size: int  # min side of the detection box, px in the source image
    blur: float  # variance of the Laplacian of the aligned grey crop (higher is sharper)
    yaw_ratio: float  # nose position between the eyes along the eye axis: 0 frontal, +-1 nose over an eye
    ok: bool
    reasons: tuple[str, ...] = ()


@dataclass(eq=False)  # eq=False: numpy fields make generated __eq__ ambiguous; identity is what callers need
class Face:
    """One detected face. Faces failing the quality policy are kept with `quality.ok == False`."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2, clipped to the image
    score: float  # detector confidence
    landmarks: list[tuple[float, float]]  # left eye, right eye, nose, mouth left, mouth right (image coords)
    embedding: np.ndarray  # L2-normalised float32 vector (128-d for SFace)
    quality: Quality
    aligned: np.ndarray | None = field(default=None, repr=False)  # 112x112 BGR crop the embedding came from


def face_rank(face: Face) -> float:
    """How good a face is as a sighting's evidence: usable faces first, then larger, sharper, more frontal
    and more confident ones. Used to pick the best crop of a track; the scale only matters relatively."""
    size_term = min(face.quality.size, 160) / 160.0  # beyond ~160 px more pixels add nothing to a 112 crop
    blur_term = min(face.quality.blur, 400.0) / 400.0
    pose_term = max(0.0, 1.0 - abs(face.quality.yaw_ratio))
    return (1.0 if face.quality.ok else 0.0) + (size_term + blur_term + pose_term + face.score) / 4.0
