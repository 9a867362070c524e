"""Recorder: RTSP stream -> validated MP4 segments -> spool -> object store with retention -> catalog."""

from recorder.camera import CameraRecorder
from recorder.ffmpeg import check_stream, redact
from recorder.metrics import RecorderMetrics
from recorder.sink import SegmentSink
from recorder.spool import Spool
from recorder.uploader import Uploader

__all__ = ["CameraRecorder", "RecorderMetrics", "SegmentSink", "Spool", "Uploader", "check_stream", "redact"]
