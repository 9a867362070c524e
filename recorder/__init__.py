"""Recorder: RTSP stream -> validated MP4 segments -> spool -> object store with retention -> catalog."""

from jifang.recorder.camera import CameraRecorder
from jifang.recorder.ffmpeg import check_stream, redact
from jifang.recorder.metrics import RecorderMetrics
from jifang.recorder.sink import SegmentSink
from jifang.recorder.spool import Spool
from jifang.recorder.uploader import Uploader

__all__ = ["CameraRecorder", "RecorderMetrics", "SegmentSink", "Spool", "Uploader", "check_stream", "redact"]
