"""Edge: runs one site's cameras (recording today; ONVIF onboarding and recognition wiring to come)."""

from edge.agent import EdgeAgent, connect_store

__all__ = ["EdgeAgent", "connect_store"]
