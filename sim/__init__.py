"""Simulators for demos and tests: an RTSP camera (GStreamer), its ONVIF side."""
