"""One spool per agent: where an agent's spool lives, and the lock file that keeps a second agent out of it.

Two agents sharing a spool sweep each other's live recordings (FileNotFoundError, false camera_offline gaps),
so an agent takes an exclusive lock on ``<spool>/agent.lock`` for its whole life. The lock is an OS file lock:
it dies with the process, even after SIGKILL, so a crashed agent never blocks its successor.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

from jifang.errors import SpoolInUseError

LOCK_NAME = "agent.lock"


def spool_path(spool_dir: Path, agent_id: str | None) -> Path:
    """The agent's spool: ``spool_dir`` itself for a single unnamed agent, ``spool_dir/<agent id>`` for a named
    one, so agents of one configuration on one machine each get their own."""
    if not agent_id:
        return Path(spool_dir)
    return Path(spool_dir) / re.sub(r"[^0-9A-Za-z._-]", "_", agent_id)


class SpoolLock:
    def __init__(self, root: Path, agent_id: str) -> None:
        self.path = Path(root) / LOCK_NAME
        self.agent_id = agent_id
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another agent"
            os.close(fd)
            raise SpoolInUseError(
                f"spool {self.path.parent} is in use by {holder}: give each agent on this machine its own "
                "--agent-id (its spool becomes <recorder.spool_dir>/<agent id>) or its own recorder.spool_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"agent {self.agent_id} (pid {os.getpid()})\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock; the file stays, harmlessly
            self._fd = None
