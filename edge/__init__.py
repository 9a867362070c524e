"""Edge: runs one site's cameras: recording, recognition and ONVIF onboarding (probe, discovery, health).

``EdgeAgent`` is imported lazily so that light modules (the ONVIF client, onboarding) do not pull in the
recorder, the database and Alembic."""

from __future__ import annotations

from typing import Any

__all__ = ["EdgeAgent"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from jifang.edge import agent

        return getattr(agent, name)
    raise AttributeError(name)
