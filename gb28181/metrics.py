"""Prometheus metrics of the GB/T 28181 platform (on the edge agent's registry, prefix ``jifang_gb28181_``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class GbMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.devices_online = Gauge("jifang_gb28181_devices_online", "Registered devices sending keepalives",
                                    registry=r)
        self.registrations = Counter("jifang_gb28181_registrations_total", "Accepted REGISTERs (new, renewal, "
                                     "unregister)", ["kind"], registry=r)
        self.registration_failures = Counter("jifang_gb28181_registration_failures_total",
                                             "Refused REGISTERs by reason", ["reason"], registry=r)
        self.keepalive_age = Gauge("jifang_gb28181_keepalive_age_seconds", "Seconds since the device's last "
                                   "keepalive", ["device"], registry=r)
        self.invites = Counter("jifang_gb28181_invites_total", "INVITEs by result (ok, the SIP code, timeout)",
                               ["result"], registry=r)
        self.rtp_packets = Counter("jifang_gb28181_rtp_packets_total", "RTP packets received", ["channel"],
                                   registry=r)
        self.rtp_lost = Counter("jifang_gb28181_rtp_lost_total", "RTP packets never received (sequence gaps)",
                                ["channel"], registry=r)
        self.rtp_reordered = Counter("jifang_gb28181_rtp_reordered_total", "RTP packets that arrived out of "
                                     "order", ["channel"], registry=r)
        self.bad_input = Counter("jifang_gb28181_bad_input_total", "Messages and packets refused (malformed SIP, "
                                 "oversize, unknown device, SSRC mismatch, not RTP)", ["kind"], registry=r)
        self.media_up = Gauge("jifang_gb28181_media_up", "1 while the channel's RTP stream is flowing", ["channel"],
                              registry=r)
