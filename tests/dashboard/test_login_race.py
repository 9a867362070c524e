"""Security finding 5: the login limit holds under simultaneous attempts (also from separate processes' pools),
and password hashing (argon2, 64 MiB each) runs a bounded number at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from jifang.dashboard import users as users_module
from jifang.dashboard.options import DashboardOptions
from jifang.dashboard.users import HASH_CONCURRENCY, Users

from jifang.db import Catalog

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ATTEMPTS = 25


@pytest.fixture(params=["sqlite", "postgresql"])
def catalogs(request: pytest.FixtureRequest, tmp_path) -> list[Catalog]:  # type: ignore[no-untyped-def]
    from tests.conftest import pg_schema_url

    urls = iter([f"sqlite:///{tmp_path / 'catalog.db'}"]) if request.param == "sqlite" else pg_schema_url()
    url = next(urls)
    first = Catalog(url)
    first.migrate()
    yield [first, Catalog(url)]  # two engines, two connection pools: two dashboard processes
    for catalog in (first,):
        catalog.engine.dispose()
    next(urls, None)


def test_simultaneous_wrong_passwords_get_at_most_the_limit_of_checks(catalogs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    options = DashboardOptions()
    instances = [Users(catalog, options) for catalog in catalogs]
    instances[0].add("admin", "correct-horse-battery", "admin", "", NOW, "test")
    checks, running, peak = [], [0], [0]
    lock = threading.Lock()
    real = users_module.HASHER

    class CountingHasher:
        def verify(self, hashed: str, password: str) -> bool:
            with lock:
                checks.append(1)
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                return real.verify(hashed, password)
            finally:
                with lock:
                    running[0] -= 1

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(real, name)

    monkeypatch.setattr(users_module, "HASHER", CountingHasher())
    start = threading.Barrier(ATTEMPTS)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        users = instances[i % 2]
        start.wait()
        if not users.take_login_slot("admin", "10.0.0.7", NOW):
            outcomes.append("throttled")
            return
        outcomes.append("ok" if users.authenticate("admin", "wrong-password", "10.0.0.7", NOW) else "failed")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(ATTEMPTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(outcomes) == ATTEMPTS
    assert len(checks) == outcomes.count("failed") == options.login_failures_per_user
    assert outcomes.count("throttled") == ATTEMPTS - options.login_failures_per_user
    assert peak[0] <= HASH_CONCURRENCY
    # the limit holds for the right password too, until the window has passed
    assert not instances[1].take_login_slot("admin", "10.0.0.7", NOW)
    later = NOW + options.login_window + timedelta(seconds=1)
    assert instances[1].take_login_slot("admin", "10.0.0.7", later)
    assert instances[1].authenticate("admin", "correct-horse-battery", "10.0.0.7", later) is not None
