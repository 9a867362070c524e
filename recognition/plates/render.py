"""Synthetic Chinese plates for tests and benchmarks (GA 36-2018 geometry, Debian `fonts-wqy-microhei`).

Tests must not depend on photos outside the repository, so they render plates with known text, composite them
onto a background (a synthetic car, or in the bench a real photo of a car without a plate) with a little
perspective, blur and noise, and check that the reader gets the text back.

Geometry in millimetres per GA 36-2018: ordinary plates 440x140 with seven 45x90 characters, new-energy plates
480x140 with eight 43x90 characters, double-row (rear, large vehicle) yellow plates 440x220. Real plates use
a dedicated narrow typeface; WenQuanYi Micro Hei glyphs are stretched into the same character cells, which is
close enough for an OCR model trained on real plates and signs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from jifang.recognition.plates.ga36 import DIGITS, LETTERS, NEW_ENERGY_MARKS, PROVINCES, SERIAL_CHARS
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
STYLES = ("blue", "yellow", "green")

# RGB colours measured loosely from photos of real plates.
_BG = {"blue": (16, 66, 190), "yellow": (245, 190, 20), "white": (240, 240, 240), "black": (20, 20, 20)}
_FG = {"blue": (250, 250, 250), "yellow": (10, 10, 10), "green": (10, 10, 10), "white": (10, 10, 10),
       "black": (250, 250, 250)}
_GREEN_TOP, _GREEN_BOTTOM = (236, 248, 236), (52, 190, 96)  # small new-energy plates: white-to-green gradient


class FontMissingError(RuntimeError):
    """The CJK font is not installed (Debian: `apt-get install fonts-wqy-microhei`)."""


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    if not FONT_PATH.is_file():
        raise FontMissingError(f"{FONT_PATH} not found: install Debian's fonts-wqy-microhei")
    return ImageFont.truetype(str(FONT_PATH), size=size)


@lru_cache(maxsize=512)
def _glyph(char: str, width: int, height: int, bold: int) -> Image.Image:
    """One character as an 'L' mask stretched to exactly width x height pixels (its plate cell)."""
    font = _font(256)
    left, top, right, bottom = font.getbbox(char)
    canvas = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), char, font=font, fill=255)
    canvas = canvas.crop(canvas.getbbox())
    mask = canvas.resize((width, height), Image.Resampling.LANCZOS)
    if bold > 1:
        # Plate characters are heavier than Micro Hei Regular; a small max filter thickens the strokes.
        mask = mask.filter(ImageFilter.MaxFilter(bold))
    return mask


def _cells(n_chars: int) -> list[tuple[float, float, float, float]]:
    """(x, y, w, h) in mm of each character of a single-row plate."""
    if n_chars == 8:  # new-energy 480x140: 43 mm characters, 9 mm gaps, 49 mm gap (with the dot) after the 2nd
        width, gap, dot_gap, left = 43.0, 9.0, 49.0, 16.5
    else:  # ordinary 440x140: 45 mm characters, 12 mm gaps, 34 mm gap (with the dot) after the 2nd
        width, gap, dot_gap, left = 45.0, 12.0, 34.0, 15.5
    cells, x = [], left
    for i in range(n_chars):
        cells.append((x, 25.0, width, 90.0))
        x += width + (dot_gap if i == 1 else gap)
    return cells


def plate_size_mm(text: str, double_row: bool = False) -> tuple[float, float]:
    if double_row:
        return 440.0, 220.0
    return (480.0, 140.0) if len(text) == 8 else (440.0, 140.0)


def render_plate(text: str, style: str = "blue", double_row: bool = False, px_per_mm: float = 2.0) -> np.ndarray:
    """The plate alone, BGR uint8, at `px_per_mm` (2.0 gives 880x280 for an ordinary plate)."""
    if style not in (*STYLES, "white", "black"):
        raise ValueError(f"unknown plate style {style!r}")
    if double_row and len(text) != 7:
        raise ValueError("double-row plates carry 7 characters")
    w_mm, h_mm = plate_size_mm(text, double_row)
    s = px_per_mm
    width, height = round(w_mm * s), round(h_mm * s)
    if style == "green":
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None] ** 1.4
        top, bottom = np.array(_GREEN_TOP, np.float32), np.array(_GREEN_BOTTOM, np.float32)
        pixels = np.broadcast_to(top + (bottom - top) * ramp, (height, width, 3)).astype(np.uint8)
        plate = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    else:
        plate = Image.new("RGB", (width, height), _BG[style])
    draw = ImageDraw.Draw(plate)
    fg = _FG[style]
    # The frame line, 1.5 mm wide and 2.5 mm in from the edge, as pressed into real plates.
    inset, line = 2.5 * s, max(1, round(1.5 * s))
    draw.rounded_rectangle((inset, inset, width - inset, height - inset), radius=6 * s, outline=fg, width=line)
    bold = max(1, round(s * 1.5)) | 1  # odd kernel size for MaxFilter

    if double_row:
        # Top row: province + authority letter, 80x60 mm each; bottom row: five 65x110 mm characters.
        top_cells = [(110.0, 15.0, 80.0, 60.0), (250.0, 15.0, 80.0, 60.0)]
        bottom_cells = [(27.5 + i * 80.0, 90.0, 65.0, 110.0) for i in range(5)]
        cells = top_cells + bottom_cells
    else:
        cells = _cells(len(text))
    for char, (x, y, w, h) in zip(text, cells, strict=True):
        mask = _glyph(char, round(w * s), round(h * s), bold)
        plate.paste(Image.new("RGB", mask.size, fg), (round(x * s), round(y * s)), mask)
    if not double_row:
        # The separating dot between the authority letter and the serial.
        x2 = cells[1][0] + cells[1][2]
        cx, cy, r = (x2 + (cells[2][0] - x2) / 2) * s, 70.0 * s, 5.0 * s
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
    return cv2.cvtColor(np.asarray(plate), cv2.COLOR_RGB2BGR)


def random_plate_text(rng: random.Random, style: str = "blue") -> str:
    """A random valid plate number for the style: 7 characters (blue/yellow) or a new-energy 8 (green)."""
    province, authority = rng.choice(PROVINCES), rng.choice(LETTERS)
    if style == "green":
        if rng.random() < 0.75:  # small new-energy vehicle: D/F, letter-or-digit, four digits
            serial = rng.choice(NEW_ENERGY_MARKS) + rng.choice(SERIAL_CHARS) + "".join(rng.choices(DIGITS, k=4))
        else:  # large new-energy vehicle: five digits, D/F
            serial = "".join(rng.choices(DIGITS, k=5)) + rng.choice(NEW_ENERGY_MARKS)
        return province + authority + serial
    # Ordinary serials mostly carry digits with at most two letters, as issued in practice.
    serial = [rng.choice(DIGITS) for _ in range(5)]
    for pos in rng.sample(range(5), rng.choice((0, 1, 1, 2))):
        serial[pos] = rng.choice(LETTERS)
    return province + authority + "".join(serial)


def synthetic_background(rng: random.Random, width: int = 640, height: int = 480) -> tuple[np.ndarray, tuple[int, int]]:
    """A crude car front on a noisy street: BGR image and the bumper point where a plate belongs."""
    nprng = np.random.default_rng(rng.randrange(2**32))
    ground = rng.randint(60, 160)
    img = np.clip(nprng.normal(ground, 18, (height, width, 3)), 0, 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 2.0)
    body = tuple(int(c) for c in nprng.integers(20, 235, 3))
    cx, cw, top = width // 2 + rng.randint(-width // 10, width // 10), int(width * rng.uniform(0.55, 0.8)), height // 5
    x0, x1, bottom = cx - cw // 2, cx + cw // 2, int(height * 0.85)
    cv2.rectangle(img, (x0, top + height // 6), (x1, bottom), body, -1)
    windshield = np.array([[x0 + cw // 8, top + height // 6], [x1 - cw // 8, top + height // 6],
                           [x1 - cw // 5, top], [x0 + cw // 5, top]], np.int32)
    cv2.fillPoly(img, [windshield], (40, 40, 45))
    for wx in (x0 + cw // 6, x1 - cw // 6):  # wheels
        cv2.circle(img, (wx, bottom), height // 12, (15, 15, 15), -1)
    grille_y = top + height // 6 + (bottom - top) // 5
    for k in range(4):  # grille slats
        y = grille_y + k * 8
        cv2.line(img, (cx - cw // 5, y), (cx + cw // 5, y), tuple(max(0, c - 60) for c in body), 3)
    for lx in (x0 + cw // 10, x1 - cw // 10):  # headlights
        cv2.ellipse(img, (lx, grille_y + 10), (cw // 12, height // 40), 0, 0, 360, (230, 230, 220), -1)
    noise = nprng.normal(0, 6, img.shape)
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    plate_center = (cx, int(bottom - (bottom - grille_y) * 0.35))
    return img, plate_center


def composite(
    background: np.ndarray,
    plate: np.ndarray,
    center: tuple[int, int],
    width_px: int,
    rng: random.Random,
    perspective: float = 0.06,
    rotate_deg: float = 0.0,
    blur: float = 0.0,
    noise: float = 0.0,
    jpeg_quality: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp `plate` onto a copy of `background`; returns the image and the plate corners (TL, TR, BR, BL).

    `perspective` moves each corner by up to that fraction of the plate's height (a camera off the plate's axis);
    `blur` is a Gaussian sigma in pixels applied to the whole frame after compositing (focus, motion, scaling).
    """
    ph, pw = plate.shape[:2]
    height_px = width_px * ph / pw
    cx, cy = center
    theta = np.deg2rad(rotate_deg)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    half = np.array([[-width_px / 2, -height_px / 2], [width_px / 2, -height_px / 2],
                     [width_px / 2, height_px / 2], [-width_px / 2, height_px / 2]])
    jitter = np.array([[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(4)]) * perspective * height_px
    dst = (half @ rot.T + jitter + np.array([cx, cy])).astype(np.float32)
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    h, w = background.shape[:2]
    warped = cv2.warpPerspective(plate, matrix, (w, h), flags=cv2.INTER_AREA)
    alpha = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), matrix, (w, h), flags=cv2.INTER_LINEAR)
    a = (alpha.astype(np.float32) / 255.0)[..., None]
    out = (background.astype(np.float32) * (1 - a) + warped.astype(np.float32) * a)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if noise > 0:
        out += np.random.default_rng(rng.randrange(2**32)).normal(0, noise, out.shape)
    img = np.clip(out, 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img, dst


@dataclass
class Scene:
    image: np.ndarray
    text: str
    style: str
    double_row: bool
    corners: np.ndarray


def make_scene(
    rng: random.Random,
    style: str | None = None,
    text: str | None = None,
    background: np.ndarray | None = None,
    center: tuple[int, int] | None = None,
    double_row: bool = False,
    width_range: tuple[float, float] = (0.22, 0.32),
    perspective: float = 0.06,
    max_rotate_deg: float = 3.0,
    blur_range: tuple[float, float] = (0.3, 0.9),
    noise: float = 3.0,
    jpeg_quality: int | None = 90,
) -> Scene:
    """A frame with one rendered plate; `background` defaults to a synthetic car of 640x480."""
    style = style or rng.choice(STYLES)
    text = text or random_plate_text(rng, style)
    if background is None:
        background, default_center = synthetic_background(rng)
    else:
        bh, bw = background.shape[:2]
        default_center = (int(bw * rng.uniform(0.4, 0.6)), int(bh * rng.uniform(0.6, 0.75)))
    plate = render_plate(text, style, double_row=double_row)
    width_px = int(background.shape[1] * rng.uniform(*width_range))
    image, corners = composite(
        background,
        plate,
        center or default_center,
        width_px,
        rng,
        perspective=perspective,
        rotate_deg=rng.uniform(-max_rotate_deg, max_rotate_deg),
        blur=rng.uniform(*blur_range),
        noise=noise,
        jpeg_quality=jpeg_quality,
    )
    return Scene(image, text, style, double_row, corners)
