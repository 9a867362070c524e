"""Chinese motor-vehicle plate numbers per GA 36-2018: normalisation and validation.

Scope (DESIGN.md §2): civil plates of the 31 mainland provinces, i.e. ordinary blue/yellow plates, new-energy
plates, and the 警/学/挂/港/澳 suffix plates. Embassy (使), consulate (领), military, armed-police and civil
aviation plates are out of scope and reported as invalid, never silently accepted.
"""

from __future__ import annotations

import re
import unicodedata

# The 31 provincial-level divisions of the mainland, by their plate abbreviation.
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Authority (发牌机关) codes and serial characters: A-Z and 0-9 without I and O, which GA 36 never uses
# because they read as 1 and 0.
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"
SERIAL_CHARS = LETTERS + DIGITS
NEW_ENERGY_MARKS = "DF"  # D: pure electric, F: other new-energy (plug-in hybrid, fuel cell)
SUFFIXES = "警学挂港澳"
HK_MACAU_PREFIX = "粤Z"  # 港/澳 plates are issued by Guangdong to cross-border vehicles only
OUT_OF_SCOPE = {"使": "embassy plate (使)", "领": "consulate plate (领)", "军": "military plate", "WJ": "armed-police"}

# Separators seen on plates and in OCR output: the plate's own dot (U+00B7), bullets, the katakana middle dot
# and the full stops, colons and commas that OCR models emit for it, hyphens and every kind of white space.
_SEPARATORS = re.compile(r"[\s·•∙⋅・･‧\-‐‑‒–—_.．。:：,，'\"`]+")


def normalize(text: str) -> str:
    """Canonical form of a read: full-width folded to half-width, separators removed, upper-case."""
    folded = unicodedata.normalize("NFKC", text)  # full-width Ａ１ -> A1; CJK characters are unchanged
    return _SEPARATORS.sub("", folded).upper()


def _serial_problem(serial: str, what: str) -> str | None:
    bad_io = [c for c in serial if c in "IO"]
    if bad_io:
        return f"{what} contains {'/'.join(sorted(set(bad_io)))}, which GA 36 does not use"
    foreign = [c for c in serial if c not in SERIAL_CHARS]
    if foreign:
        return f"{what} contains {''.join(foreign)!r}; only A-Z (no I/O) and 0-9 are allowed"
    return None


def _new_energy_problem(serial: str) -> str | None:
    if (p := _serial_problem(serial, "new-energy serial")) is not None:
        return p
    # Small new-energy vehicles: D/F first, then a letter or digit, then four digits (e.g. 苏E·D51712).
    if serial[0] in NEW_ENERGY_MARKS and all(c in DIGITS for c in serial[2:]):
        return None
    # Large new-energy vehicles: five digits, then D/F last (e.g. 粤B·12345D).
    if all(c in DIGITS for c in serial[:5]) and serial[5] in NEW_ENERGY_MARKS:
        return None
    return (
        "new-energy serial must be D/F + letter-or-digit + 4 digits (small vehicle) or 5 digits + D/F (large vehicle)"
    )


def problem(text: str) -> str | None:
    """None when `text` is a valid in-scope plate number, else why not (a short English sentence)."""
    plate = normalize(text)
    if not plate:
        return "empty read"
    for mark, what in OUT_OF_SCOPE.items():
        if plate.startswith(mark) or (len(mark) == 1 and plate.endswith(mark)):
            return f"{what} is out of scope"
    province = plate[0]
    if province not in PROVINCES:
        return f"unknown province abbreviation {province!r}"
    if len(plate) < 2:
        return "too short: no authority letter"
    authority = plate[1]
    if authority not in LETTERS:
        if authority in "IO":
            return f"authority letter {authority} is not used by GA 36"
        return f"authority code {authority!r} must be a letter A-Z without I/O"
    serial = plate[2:]
    if serial and serial[-1] in SUFFIXES:
        suffix, body = serial[-1], serial[:-1]
        if len(body) != 4:
            return f"{suffix} plates have 4 characters before {suffix}, got {len(body)}"
        if suffix in "港澳" and plate[:2] != HK_MACAU_PREFIX:
            return f"{suffix} plates are issued as {HK_MACAU_PREFIX} only"
        return _serial_problem(body, f"serial of the {suffix} plate")
    non_ascii = [c for c in serial if not c.isascii()]
    if non_ascii:
        return f"unexpected character {non_ascii[0]!r} in the serial"
    if len(serial) == 5:
        return _serial_problem(serial, "serial")
    if len(serial) == 6:
        return _new_energy_problem(serial)
    return f"wrong length: {len(plate)} characters (ordinary plates have 7, new-energy plates 8)"


def is_valid(text: str) -> bool:
    return problem(text) is None


def plate_kind(text: str) -> str:
    """'ordinary', 'new_energy', a suffix kind ('police', 'coach', 'trailer', 'hongkong', 'macau'), '' if invalid."""
    plate = normalize(text)
    if problem(plate) is not None:
        return ""
    kinds = {"警": "police", "学": "coach", "挂": "trailer", "港": "hongkong", "澳": "macau"}
    if plate[-1] in kinds:
        return kinds[plate[-1]]
    return "new_energy" if len(plate) == 8 else "ordinary"
