"""Plates: GA 36-2018 validation (property tests) and the reader on plates these tests render themselves
(fonts-wqy-microhei; blue/yellow/green; random valid numbers; slight perspective, rotation, blur, noise, JPEG;
composited onto synthetic car fronts). Reader tests need the fetched models: JIFANG_MODELS_DIR (unset or broken
fails, it never skips)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jifang.recognition import models as M
from jifang.recognition.plates import ga36
from jifang.recognition.plates.reader import (
    HYPERLPR_DIR,
    PlateRead,
    PlateReader,
    SsdDetector,
    colour_from_hsv,
    order_corners,
    plate_like,
)
from jifang.recognition.plates.render import (
    FONT_PATH,
    make_scene,
    random_plate_text,
    render_plate,
    synthetic_background,
)

# --- GA 36-2018 strategies ---------------------------------------------------------------------------------------

provinces = st.sampled_from(ga36.PROVINCES)
letters = st.sampled_from(ga36.LETTERS)
digits = st.sampled_from(ga36.DIGITS)
serial_chars = st.sampled_from(ga36.SERIAL_CHARS)
marks = st.sampled_from(ga36.NEW_ENERGY_MARKS)


def _join(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


ordinary = _join(provinces, letters, *[serial_chars] * 5)
new_energy_small = _join(provinces, letters, marks, serial_chars, *[digits] * 4)
new_energy_large = _join(provinces, letters, *[digits] * 5, marks)
suffixed = _join(provinces, letters, *[serial_chars] * 4, st.sampled_from("警学挂"))
hk_macau = _join(st.just("粤Z"), *[serial_chars] * 4, st.sampled_from("港澳"))
valid_plates = st.one_of(ordinary, new_energy_small, new_energy_large, suffixed, hk_macau)
# Anything that is not one of the 31 provincial abbreviations: other CJK characters, Latin, digits.
not_provinces = st.characters(min_codepoint=0x21, max_codepoint=0x9FFF).filter(
    lambda c: c not in ga36.PROVINCES and ga36.normalize(c) == c and c != "" and not c.isspace()
)


@given(valid_plates)
@example("浙J12345")
@example("苏ED51712")
@example("皖KD01833")
@example("粤B12345D")
@example("京A0006警")
@example("粤Z1234港")
def test_valid_plates_are_accepted(plate: str) -> None:
    assert ga36.problem(plate) is None
    assert ga36.is_valid(plate)


@given(valid_plates, st.sampled_from(["·", " ", "•", "-", " · "]))
def test_normalisation_of_decorated_and_full_width_reads(plate: str, sep: str) -> None:
    decorated = plate[:2] + sep + plate[2:]
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in decorated)
    assert ga36.normalize(decorated) == plate
    assert ga36.normalize(full_width) == plate
    assert ga36.normalize(decorated.lower()) == plate
    assert ga36.normalize(ga36.normalize(decorated)) == ga36.normalize(decorated)  # idempotent


@given(valid_plates, st.data())
def test_i_or_o_in_the_serial_is_rejected(plate: str, data: st.DataObject) -> None:
    # Replace one serial character (after province + authority, before any suffix) with I or O.
    last = len(plate) - (1 if plate[-1] in ga36.SUFFIXES else 0)
    pos = data.draw(st.integers(2, last - 1))
    bad = plate[:pos] + data.draw(st.sampled_from("IO")) + plate[pos + 1 :]
    assert ga36.problem(bad) is not None


@given(valid_plates, st.sampled_from("IO"))
def test_i_or_o_as_authority_letter_is_rejected(plate: str, letter: str) -> None:
    assert "not used" in (ga36.problem(plate[0] + letter + plate[2:]) or "")


@given(ordinary, st.integers(0, 8).filter(lambda n: n not in (5, 6)), st.data())
def test_wrong_lengths_are_rejected(plate: str, serial_len: int, data: st.DataObject) -> None:
    serial = "".join(data.draw(st.lists(digits, min_size=serial_len, max_size=serial_len)))
    assert ga36.problem(plate[:2] + serial) is not None


@given(suffixed, serial_chars)
def test_suffix_plates_need_four_serial_characters(plate: str, extra: str) -> None:
    assert ga36.problem(plate[:-1] + extra + plate[-1]) is not None  # 5 before the suffix
    assert ga36.problem(plate[:3] + plate[4:]) is not None  # 3 before the suffix


@given(valid_plates, not_provinces)
def test_unknown_provinces_are_rejected(plate: str, province: str) -> None:
    assert ga36.problem(province + plate[1:]) is not None


@given(_join(provinces, letters, *[serial_chars] * 6))
def test_new_energy_serials_follow_the_d_f_rule(plate: str) -> None:
    serial = plate[2:]
    small = serial[0] in "DF" and serial[2:].isdigit()
    large = serial[:5].isdigit() and serial[5] in "DF"
    assert (ga36.problem(plate) is None) == (small or large)


@pytest.mark.parametrize(
    ("plate", "why"),
    [
        ("使014578", "out of scope"),  # embassy
        ("沪A1234领", "out of scope"),  # consulate
        ("浙A1234港", "粤Z"),  # Hong Kong plates are 粤Z only
        ("", "empty"),
        ("浙J1234", "wrong length"),
        ("浙J123456789", "wrong length"),
        ("台A12345", "unknown province"),
        ("浙JD1234F", "new-energy"),
    ],
)
def test_out_of_scope_and_malformed_plates(plate: str, why: str) -> None:
    assert why in (ga36.problem(plate) or "")


@given(st.randoms(use_true_random=False), st.sampled_from(["blue", "yellow", "green"]))
@settings(max_examples=200)
def test_random_plate_text_is_always_valid(rng: random.Random, style: str) -> None:
    text = random_plate_text(rng, style)
    assert ga36.problem(text) is None
    assert len(text) == (8 if style == "green" else 7)


# --- pure reader helpers -----------------------------------------------------------------------------------------


def test_order_corners_from_any_starting_point() -> None:
    quad = np.array([[10, 10], [110, 14], [108, 44], [8, 40]], np.float32)
    for shift in range(4):
        np.testing.assert_array_equal(order_corners(np.roll(quad, shift, axis=0)), quad)
    np.testing.assert_array_equal(order_corners(quad[[0, 3, 2, 1]]), quad)  # counter-clockwise input


def test_plate_like_tells_plates_from_placards() -> None:
    assert plate_like("浙J12345") and plate_like("浙JI2345") and plate_like("J12345")
    assert not plate_like("") and not plate_like("088")
    assert not plate_like("合肥宝利丰BMW5S旗舰店")


def test_colour_from_hsv_on_rendered_plates() -> None:
    for style in ("blue", "yellow", "green"):
        plate = render_plate("浙J12345" if style != "green" else "浙JD12345", style, px_per_mm=0.5)
        assert colour_from_hsv(plate) == style
    assert colour_from_hsv(render_plate("浙J1234警", "white", px_per_mm=0.5)) == "white"
    assert colour_from_hsv(render_plate("粤Z1234港", "black", px_per_mm=0.5)) == "black"


def test_render_geometry() -> None:
    assert FONT_PATH.is_file(), "install Debian's fonts-wqy-microhei"
    assert render_plate("浙J12345", "blue", px_per_mm=1.0).shape == (140, 440, 3)
    assert render_plate("浙JD12345", "green", px_per_mm=1.0).shape == (140, 480, 3)
    assert render_plate("浙J12345", "yellow", double_row=True, px_per_mm=1.0).shape == (220, 440, 3)


# --- the reader on rendered plates --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models_dir() -> Path:
    try:
        return M.models_dir_from_env()
    except M.FetchError as exc:  # unset or broken fails: setup runs `jifang models fetch` before the tests
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def reader(models_dir: Path) -> PlateReader:
    return PlateReader(models_dir)


def _exact_rate(
    reader: PlateReader, scenes: list, label: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[tuple[str, list[str]]]]:
    hits, misses = 0, []
    for scene in scenes:
        reads = reader.read(scene.image)
        texts = [r.text for r in reads]
        if scene.text in texts:
            hits += 1
        else:
            misses.append((scene.text, texts))
    with capsys.disabled():  # the rate is a reported number, shown without -s
        print(f"\n{label}: exact reads {hits}/{len(scenes)} = {100 * hits / len(scenes):.1f} %; misses: {misses}")
    return hits, misses


def test_exact_read_rate_on_clean_renders(reader: PlateReader, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(20240527)
    scenes = [make_scene(rng, style) for style in ("blue", "yellow", "green") for _ in range(12)]
    hits, _ = _exact_rate(reader, scenes, f"rendered plates ({reader.detector_name})", capsys)
    assert hits / len(scenes) >= 0.90

    # Every exact read is valid, coloured like its style, boxed around the plate and confident.
    colours = exact = 0
    for scene in scenes[::4]:
        for read in reader.read(scene.image):
            if read.text != scene.text:
                continue
            exact += 1
            assert isinstance(read, PlateRead) and read.valid and read.problem is None
            colours += read.color == scene.style
            x1, y1, x2, y2 = read.box
            cx, cy = scene.corners.mean(axis=0)
            assert x1 <= cx <= x2 and y1 <= cy <= y2
            # confidence = detector score x OCR probability; the SSD scores some rendered plates 0.1-0.5 (their
            # reads count only because they are valid plates), so the OCR side carries the "confident" check
            assert read.ocr_confidence > 0.5 and 0.0 < read.confidence <= 1.0
            assert len(read.corners) == 4
    assert exact >= 0.85 * len(scenes[::4]) and colours >= 0.9 * exact  # colour is judged on exact reads


def test_green_new_energy_plates_the_ssd_scores_weakly_are_read(reader: PlateReader,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # the SSD scores some green plates 0.01-0.1, under its threshold: such a box is read when it is green and
    # crossed by character strokes (28/30 here; 25/30 without that rule)
    rng = random.Random(1)
    scenes = [make_scene(rng, "green") for _ in range(30)]
    hits, _ = _exact_rate(reader, scenes, f"green new-energy plates ({reader.detector_name})", capsys)
    assert hits >= 27
    rng = random.Random(5)
    assert [r.text for _ in range(40) for r in reader.read(synthetic_background(rng)[0])] == []


def test_a_weak_box_must_look_like_a_green_plate(models_dir: Path) -> None:
    detector = SsdDetector(models_dir / HYPERLPR_DIR)

    def whole(image: np.ndarray) -> np.ndarray:
        return np.array([0, 0, image.shape[1], image.shape[0]], np.float32)

    green = render_plate("浙AD12345", "green", px_per_mm=0.5)
    blue = render_plate("浙A12345", "blue", px_per_mm=0.5)
    lawn = np.clip(np.random.default_rng(3).normal((60, 140, 70), 12, (70, 220, 3)), 0, 255).astype(np.uint8)
    blank_green = np.full_like(green, green[5, 5])  # a plate's colour without characters
    assert detector._looks_like_green_plate(green, whole(green))
    assert not detector._looks_like_green_plate(blue, whole(blue))
    assert not detector._looks_like_green_plate(lawn, whole(lawn))
    assert not detector._looks_like_green_plate(blank_green, whole(blank_green))


def test_double_row_yellow_plates(reader: PlateReader, capsys: pytest.CaptureFixture[str]) -> None:
    # a fresh install's detector (the HyperLPR SSD) does not say double-row; the reader's second look does
    rng = random.Random(99)
    scenes = [make_scene(rng, "yellow", double_row=True, width_range=(0.2, 0.28)) for _ in range(10)]
    hits, _ = _exact_rate(reader, scenes, "double-row yellow", capsys)
    assert hits >= 7
    assert all(r.double_row for r in reader.read(scenes[0].image))


def test_clp_det_fallback_reads_rendered_plates(
    models_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # A models folder with neither HyperLPR detector (an old fetch): clp_det is chosen, with a warning.
    (tmp_path / "plates").mkdir()
    for rel in ("plates/clp_det.onnx", "plates/ch_PP-OCRv4_rec_infer.onnx"):
        (tmp_path / rel).symlink_to((models_dir / rel).resolve())
    with caplog.at_level(logging.WARNING, logger="jifang.recognition.plates.reader"):
        fallback = PlateReader(tmp_path)
    assert fallback.detector_name == "clp_det" and fallback.colour_model is None
    assert "HyperLPR plate detector not in" in caplog.text and "jifang models fetch" in caplog.text
    rng = random.Random(7)
    scenes = [make_scene(rng, style) for style in ("blue", "yellow", "green") for _ in range(4)]
    hits, _ = _exact_rate(fallback, scenes, "rendered plates (clp_det)", capsys)
    assert hits / len(scenes) >= 0.75


def test_no_plate_no_read(reader: PlateReader) -> None:
    rng = random.Random(5)
    plain = np.full((480, 640, 3), 128, np.uint8)
    noisy = np.clip(np.random.default_rng(1).normal(120, 20, (480, 640, 3)), 0, 255).astype(np.uint8)
    cars = [synthetic_background(rng)[0] for _ in range(5)]
    for image in (plain, noisy, *cars):
        assert reader.read(image) == []


def test_invalid_reads_are_flagged_not_dropped(reader: PlateReader) -> None:
    # GA 36 never uses I in a serial: the plate is read as written and comes back flagged, not dropped.
    rng = random.Random(11)
    scene = make_scene(rng, "blue", text="浙J1I345", blur_range=(0.2, 0.4), width_range=(0.3, 0.32))
    reads = reader.read(scene.image)
    assert len(reads) == 1
    read = reads[0]
    assert not read.valid and read.problem is not None
    assert read.text.startswith("浙J")


def test_read_crop_without_detection(reader: PlateReader) -> None:
    crop = render_plate("皖KD01833", "green", px_per_mm=0.4)
    read = reader.read_crop(cv2.GaussianBlur(crop, (3, 3), 0))
    assert (read.text, read.valid, read.color) == ("皖KD01833", True, "green")


def test_sessions_use_one_thread_by_default(reader: PlateReader) -> None:
    sessions = [reader.recognizer.session]
    if isinstance(reader.detector, SsdDetector):
        assert cv2.getNumThreads() == 1  # the SSD runs in OpenCV's dnn module
    else:
        sessions.append(reader.detector.session)
    for session in sessions:
        assert session.get_session_options().intra_op_num_threads == 1


def test_text_that_is_not_plate_like_is_dropped_unless_asked_for(reader: PlateReader, models_dir: Path) -> None:
    # A dealer's placard in the plate holder of a new car (two of the real no-plate photos have one): by default
    # no read; keep_unreadable=True reports it flagged.
    rng = random.Random(3)
    scene = make_scene(rng, "blue", text="宝利丰旗舰店A", width_range=(0.3, 0.32))
    assert reader.read(scene.image) == []
    assert reader.last_times.rejected
    keeping = PlateReader(models_dir, keep_unreadable=True)
    (read,) = keeping.read(scene.image)
    assert not read.valid and "unreadable" in (read.problem or "")
