"""ONVIF onboarding: camera probe, WS-Discovery and a camera simulator for demos and tests."""
