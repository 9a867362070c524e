"""What a fresh clone gets: the install fetches models from registries only and the tests never read ../shared
(benchmark photos and the optional y5fu model live there; a user's clone has neither)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = os.path.join(os.path.dirname(REPO), "shared")  # as tests/conftest.py computes it


def test_opening_shared_fails_in_tests() -> None:
    with pytest.raises(PermissionError, match=r"fresh clone has no \.\./shared"):
        open(os.path.join(SHARED, "testdata", "plates", "ccpd_demo_0.jpg"), "rb")  # noqa: SIM115
    with pytest.raises(PermissionError, match=r"fresh clone has no \.\./shared"):
        open(os.path.join(os.path.relpath(SHARED), "testdata", "models", "y5fu_320x_sim.onnx"), "rb")  # noqa: SIM115


def test_install_and_ci_use_no_local_models() -> None:
    install = (REPO / "scripts" / "install.sh").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    fetches = [line for line in install.splitlines() if "models fetch" in line and not line.lstrip().startswith("#")]
    assert fetches and all("--from" not in line and "shared" not in line for line in fetches)
    assert "git clone" in ci and "unset JIFANG_MODELS_DIR" in ci and "./scripts/test.sh" in ci
