"""The S3 test server the benchmarks upload to: moto on 127.0.0.1, quiet, with jifang's buckets ready."""

from __future__ import annotations

import logging
from typing import Any

from jifang.store.minio_store import MinioStore


def start_s3() -> tuple[Any, str, MinioStore]:
    """Start the server; returns it (call ``.stop()``), its endpoint HOST:PORT and a store on it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "{}:{}".format(*server.get_host_and_port())
    store = MinioStore(endpoint, "k", "s", secure=False)
    store.ensure_ready()
    return server, endpoint, store
