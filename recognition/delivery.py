"""Delivery of incidents out of jifang: MQTT (``jifang/grid/<grid>/incident``, QoS 1, JSON) and webhooks
(JSON POST signed with HMAC-SHA256). An outbox table holds one row per incident and channel; failed sends
are retried with backoff, counted, and visible in the row's last error; nothing is dropped."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import requests
from jifang.recognition.metrics import DeliveryMetrics
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from jifang.config import MqttConfig, Settings
from jifang.db import Catalog
from jifang.db.models import Delivery
from jifang.incidents.inbox import incident_document
from jifang.supervision import Worker, every

log = logging.getLogger("jifang.delivery")
SIGNATURE_HEADER = "X-Jifang-Signature"
TIMESTAMP_HEADER = "X-Jifang-Timestamp"


def topic(grid: str) -> str:
    return f"jifang/grid/{grid}/incident"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, timestamp + "." + body): the receiver recomputes and compares."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class MqttPublisher:
    def __init__(self, config: MqttConfig) -> None:
        import paho.mqtt.client as mqtt  # deferred: only where an MQTT broker is configured

        self.config = config
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"jifang-{int(time.time() * 1000)}")
        if config.username:
            password = config.password.read("recognition.mqtt.password") if config.password else None
            self.client.username_pw_set(config.username, password)
        if config.tls:
            self.client.tls_set()
        self._connected = False

    def publish(self, grid: str, payload: bytes, timeout: float = 10.0) -> None:
        if not self._connected:
            self.client.connect(self.config.host, self.config.port, keepalive=30)
            self.client.loop_start()
            self._connected = True
        info = self.client.publish(topic(grid), payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise ConnectionError(f"MQTT broker {self.config.host}:{self.config.port} did not acknowledge (QoS 1)")

    def close(self) -> None:
        if self._connected:
            self.client.loop_stop()
            self.client.disconnect()
            self._connected = False


class Deliverer:
    def __init__(self, settings: Settings, catalog: Catalog, clock: Callable[[], datetime],
                 metrics_registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.clock = clock
        self.failures = DeliveryMetrics(metrics_registry).failures
        self._mqtt: MqttPublisher | None = None
        self._secrets = {hook.url: hook.secret for hook in settings.recognition.webhooks}
        self._worker = Worker("delivery", every(0.5, self.deliver_due, log, "incident delivery pass"), join_seconds=15)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()
        if self._mqtt is not None:
            self._mqtt.close()

    def deliver_due(self) -> int:
        """Send every delivery that is due; returns how many succeeded."""
        now = self.clock()
        with self.catalog.session() as session:
            due = list(session.scalars(select(Delivery).where(
                Delivery.delivered_at.is_(None), Delivery.next_attempt_at <= now).order_by(Delivery.id).limit(100)))
        done = 0
        for delivery in due:
            document = incident_document(self.catalog, delivery.incident_id)
            body = json.dumps(document, ensure_ascii=False).encode()
            error = None
            try:
                self._send(delivery.channel, document["grid"], body)
            except Exception as exc:  # network, broker, HTTP status: retried, never lost
                error = f"{type(exc).__name__}: {exc}"[:500]
            with self.catalog.session() as session:
                row = session.get(Delivery, delivery.id)
                row.attempts += 1
                if error is None:
                    row.delivered_at, row.last_error = self.clock(), ""
                    done += 1
                else:
                    delay = min(300.0, 2.0 ** min(row.attempts, 9))
                    row.next_attempt_at, row.last_error = self.clock() + timedelta(seconds=delay), error
                    self.failures.labels(delivery.channel.split(":", 1)[0]).inc()
                    log.warning("incident %d via %s failed (attempt %d, retry in %.0f s): %s", row.incident_id,
                                delivery.channel, row.attempts, delay, error)
                session.commit()
        return done

    def _send(self, channel: str, grid: str, body: bytes) -> None:
        if channel == "mqtt":
            if self.settings.recognition.mqtt is None:
                raise RuntimeError("MQTT is not configured")
            if self._mqtt is None:
                self._mqtt = MqttPublisher(self.settings.recognition.mqtt)
            try:
                self._mqtt.publish(grid, body)
            except Exception:
                self._mqtt.close()
                self._mqtt = None
                raise
            return
        url = channel.removeprefix("webhook:")
        secret = self._secrets[url].read(f"webhook {url} secret")
        timestamp = str(int(time.time()))
        response = requests.post(url, data=body, timeout=10, headers={
            "Content-Type": "application/json; charset=utf-8", TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body)})
        if response.status_code >= 300:
            raise ConnectionError(f"HTTP {response.status_code}")
