"""The input-source hook: a camera whose video is pushed to jifang (GB/T 28181) instead of pulled over RTSP.

The recorder keeps everything else (segments, spool, upload, locks, catalog, gap ledger); a source only says
how ffmpeg reads its input (``input_args``, always from ``pipe:0``), feeds ffmpeg's stdin while a run lasts,
explains why a run ended (the error's ``gap_cause`` becomes the gap row's cause) and tells the recorder's
back-off when the camera can be tried again at once.
"""

from __future__ import annotations

from typing import IO, Protocol

from jifang.errors import CameraError


class InputSource(Protocol):
    def input_args(self) -> list[str]:
        """ffmpeg input options ending with ``-i pipe:0``."""

    def open(self, sink: IO[bytes]) -> None:
        """Start the stream and write it to ``sink`` (ffmpeg's stdin) from a thread of its own; close ``sink``
        when the stream ends. Raises CameraError (with ``gap_cause``) when the stream cannot be started."""

    def close(self) -> None:
        """End the stream (the recorder is stopping or restarting ffmpeg)."""

    def failure(self, stderr_lines: list[str]) -> CameraError:
        """Why the last run ended."""

    def ready(self) -> bool:
        """True when a new run may start at once instead of waiting out the back-off."""
