"""Recognition on a live camera: sample the sub-stream, run the plate and face pipelines, turn passes into
sightings and watchlist hits into incidents.

Recording never waits for recognition: frames go through a queue of two; when the models are busy the
oldest frame is dropped and counted (``jifang_recognition_frames_skipped_total``). OpenCV's ``read()`` can
block on a stalled stream, so the capture has open/read timeouts and is reopened with backoff.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jifang.recognition.faces.tracking import SightingTracker, Track
from jifang.recognition.metrics import RecognitionMetrics
from jifang.recognition.reporting import IncidentReporter, Observation
from jifang.recognition.watchlist import Watchlist
from sqlalchemy.exc import SQLAlchemyError

from jifang.config import CameraConfig, Settings
from jifang.errors import JifangError
from jifang.supervision import Backoff, Worker

log = logging.getLogger("jifang.recognition")
FPS = {"plate": 4.0, "face": 2.0}
# a subject in view longer than this is reported without waiting for it to leave (a parked car, a looping clip);
# its pass stays open and is not reported again
MATURE_SECONDS = 5.0


def jpeg(image: Any) -> bytes:
    import cv2  # deferred: OpenCV loads when a frame is encoded, not when the edge agent imports this

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return data.tobytes() if ok else b""


def crop(image: Any, box: tuple[int, int, int, int], pad: float = 0.2) -> Any:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    dx, dy = int((x2 - x1) * pad), int((y2 - y1) * pad)
    return image[max(0, y1 - dy):min(h, y2 + dy), max(0, x1 - dx):min(w, x2 + dx)]


class FrameSampler:
    """Reads a stream continuously (so the camera's buffer never fills) and keeps frames at ``fps``."""

    def __init__(self, camera_id: str, url: str, fps: float, metrics: RecognitionMetrics) -> None:
        self.camera_id, self.url, self.interval, self.metrics = camera_id, url, 1.0 / fps, metrics
        self.frames: collections.deque[tuple[float, Any]] = collections.deque()
        self.ready = threading.Condition()
        self._worker = Worker(f"sampler-{camera_id}", self._run)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def _run(self, stop: threading.Event) -> None:
        import cv2  # deferred: see jpeg()

        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        backoff = Backoff(initial=1.0, cap=30.0)
        while not stop.is_set():
            capture = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000,
                                                                   cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
            last_kept = 0.0
            while not stop.is_set() and capture.isOpened():
                ok, frame = capture.read()
                if not ok:
                    break
                backoff.reset()
                now = time.monotonic()
                if now - last_kept < self.interval:
                    continue
                last_kept = now
                with self.ready:
                    if len(self.frames) >= 2:  # the models are behind: drop the oldest, never block the stream
                        self.frames.popleft()
                        self.metrics.skipped.labels(self.camera_id).inc()
                    self.frames.append((time.time(), frame))
                    self.ready.notify()
            capture.release()
            if not stop.is_set():
                stop.wait(backoff.next_delay())

    def next(self, timeout: float = 1.0) -> tuple[float, Any] | None:
        with self.ready:
            if not self.frames:
                self.ready.wait(timeout)
            return self.frames.popleft() if self.frames else None


class CameraRecognizer:
    def __init__(self, camera: CameraConfig, url: str, settings: Settings, reporter: IncidentReporter,
                 watchlist: Watchlist, metrics: RecognitionMetrics, plate_reader: Any = None,
                 face_engine: Any = None, clock: Callable[[], datetime] | None = None) -> None:
        self.camera, self.settings, self.reporter, self.watchlist = camera, settings, reporter, watchlist
        self.metrics, self.plate_reader, self.face_engine = metrics, plate_reader, face_engine
        self.clock = clock or (lambda: datetime.now(UTC))
        kinds = [k for k in camera.recognize if (k == "plate" and plate_reader) or (k == "face" and face_engine)]
        self.kinds = kinds
        self.sampler = FrameSampler(camera.id, url, max(FPS[k] for k in kinds) if kinds else 1.0, metrics)
        keep_frame = lambda image, _item: image.copy()  # noqa: E731  (evidence needs the whole frame)
        self.faces: SightingTracker = SightingTracker(cropper=keep_frame)
        self.plates: SightingTracker = SightingTracker(
            box=lambda read: read.box, rank=lambda read: read.confidence, embedding=None,
            affinity=lambda a, b: 1.0 if a.text == b.text else 0.0, cropper=keep_frame)
        self._reported: dict[str, set[int]] = {"plate": set(), "face": set()}
        self._incident_ids: set[int | None] = set()
        self._worker = Worker(f"recognizer-{camera.id}", self._run)

    def start(self) -> None:
        if not self.kinds:
            return
        self.sampler.start()
        self._worker.start()

    def stop(self) -> None:
        self._worker.stopping.set()  # no new frame is taken while the sampler winds down
        self.sampler.stop()
        self._worker.stop()

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            sample = self.sampler.next()
            if sample is None:
                continue
            t, frame = sample
            try:
                self.process(t, frame)
            except Exception:  # a bad frame or model error must not end recognition for this camera
                log.exception("camera %s: recognition failed on a frame", self.camera.id)

    def process(self, t: float, frame: Any) -> None:
        """Run the pipelines on one frame and report the passes that ended."""
        if "plate" in self.kinds:
            started = time.perf_counter()
            reads = self.plate_reader.read(frame)
            self.metrics.inference.labels("plate").observe(time.perf_counter() - started)
            self.metrics.frames.labels(self.camera.id, "plate").inc()
            for sighting in self._due("plate", self.plates, t, reads, frame):
                self._reported_once("plate", sighting, self._plate_pass)
        if "face" in self.kinds:
            started = time.perf_counter()
            faces = [f for f in self.face_engine.detect(frame) if f.quality.ok]
            self.metrics.inference.labels("face").observe(time.perf_counter() - started)
            self.metrics.frames.labels(self.camera.id, "face").inc()
            for sighting in self._due("face", self.faces, t, faces, frame):
                self._reported_once("face", sighting, self._face_pass)

    def _due(self, kind: str, tracker: SightingTracker, t: float, items: list, frame: Any) -> list[Track]:
        """Sightings to report now, each once: a watch-listed subject at once (an alert must not wait for the
        pass to end), others when they leave or after MATURE_SECONDS in view. A track counts as reported only
        once its report is durable (see _reported_once): a failed report is tried again on the next frame."""
        reported = self._reported[kind]
        ended = tracker.update(t, items, frame)
        due = [s for s in ended if s.track_id not in reported]
        reported.difference_update(s.track_id for s in ended)
        for sighting in tracker.active:
            if sighting.track_id in reported:
                continue
            if sighting.duration >= MATURE_SECONDS or self._listed(kind, sighting.best, t):
                due.append(sighting)
        return due

    def _reported_once(self, kind: str, sighting: Track, report: Any) -> None:
        tracker = self.plates if kind == "plate" else self.faces
        in_view = any(s.track_id == sighting.track_id for s in tracker.active)
        try:
            report(sighting.best, sighting.best_crop, sighting.first_seen)
        except (JifangError, SQLAlchemyError, OSError) as exc:  # e.g. the catalog or the spool disk failed
            if in_view:  # still due: tried again on the next frame
                log.warning("camera %s: %s sighting not reported yet (%s); retrying", self.camera.id, kind, exc)
            else:
                log.error("camera %s: %s sighting could not be reported: %s", self.camera.id, kind, exc)
            return
        if in_view:
            self._reported[kind].add(sighting.track_id)

    def _listed(self, kind: str, item: Any, t: float) -> bool:
        at = datetime.fromtimestamp(t, UTC)
        if kind == "plate":
            return item.valid and self.watchlist.match_plate(item.text, at, self.settings.recognition.plate_fuzzy) \
                is not None
        return self.watchlist.match_face(item.embedding, at, self.settings.recognition.face_threshold) is not None

    def _plate_pass(self, read: Any, frame: Any, seen: float) -> None:
        at = datetime.fromtimestamp(seen, UTC)
        hit = self.watchlist.match_plate(read.text, at, self.settings.recognition.plate_fuzzy) if read.valid else None
        observation = Observation("plate", self.camera, at, jpeg(crop(frame, read.box, 0.1)), jpeg(frame),
                                  text=read.text, valid=read.valid, color=read.color, confidence=read.confidence,
                                  extra={"raw": read.raw, "problem": read.problem, "box": list(read.box)})
        self._report(observation, hit)

    def _face_pass(self, face: Any, frame: Any, seen: float) -> None:
        at = datetime.fromtimestamp(seen, UTC)
        hit = self.watchlist.match_face(face.embedding, at, self.settings.recognition.face_threshold)
        observation = Observation("face", self.camera, at, jpeg(crop(frame, face.box)), jpeg(frame),
                                  confidence=float(face.score), extra={"box": [int(v) for v in face.box]})
        self._report(observation, hit)

    def _report(self, observation: Observation, hit: Any) -> None:
        sighting = self.reporter.record(observation, hit)
        if hit is not None:
            self.metrics.hits.labels(observation.kind, hit.entry.category).inc()
            if sighting.incident_id not in self._incident_ids:  # a repeat within the cooldown joins it
                self._incident_ids.add(sighting.incident_id)
                self.metrics.incidents.labels(hit.entry.category, "上报").inc()
            log.info("camera %s: %s hit %s (incident %s)", self.camera.id, observation.kind, hit.entry.name,
                     sighting.incident_id)
