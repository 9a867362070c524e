"""GB/T 28181 device access: devices register over SIP and send MPEG-PS over RTP, recorded like RTSP cameras."""
