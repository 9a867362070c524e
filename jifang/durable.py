"""What makes a written file or a rename survive a power cut: fsync of the file, and of its folder."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file (its data) or a folder (the names in it: a rename or a new link)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
