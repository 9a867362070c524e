"""Edge: runs one site's cameras: recording, ONVIF onboarding (probe, discovery, health), simulated cameras.

``EdgeAgent`` and ``connect_store`` are imported lazily so that light modules (the ONVIF simulator, the
onboarding client) do not pull in the recorder, the database and Alembic."""

from __future__ import annotations

from typing import Any

__all__ = ["EdgeAgent", "connect_store"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from edge import agent

        return getattr(agent, name)
    raise AttributeError(name)
