"""The audit log has one owner (jifang/audit.py) and logs only validated source addresses."""

from __future__ import annotations

import re
from pathlib import Path

from jifang.audit import valid_ip

REPO = Path(__file__).resolve().parents[1]
PARTS = ("jifang", "edge", "recorder", "retention", "recognition", "dashboard", "cli", "demo", "sim")


def test_every_writer_goes_through_jifang_audit() -> None:
    writers = [str(path.relative_to(REPO)) for part in PARTS for path in (REPO / part).rglob("*.py")
               if re.search(r"\bAuditEntry\(", path.read_text(encoding="utf-8"))]
    assert sorted(writers) == ["jifang/audit.py", "jifang/db/models.py"]  # the model declares the class


def test_a_forged_forwarded_address_never_reaches_the_log() -> None:
    assert valid_ip("1.2.3.4;purpose:forged") == ""
    assert valid_ip("testclient") == ""
    assert valid_ip(" 10.1.2.3 ") == "10.1.2.3"
    assert valid_ip("2001:db8::1") == "2001:db8::1"
