"""What a user reads on a page, and what in it is not translated: shared by the page tests."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from jifang.dashboard.i18n import ENUMS, TEXT

from tests.dashboard.world import ROLES

CODE_KINDS = ("status", "cause", "role", "action", "media")
# Words that are the same in Chinese UIs: protocol, format and product names, UTC, the language switch, GB/T 31000
# codes, and the test world's user and actor names (data, not UI text).
ALLOWED_LATIN = {"ONVIF", "HLS", "RTSP", "TCP", "UDP", "SIP", "JSON", "SHA", "UTC", "English", "jifang", "CaseType",
                 "test", *ROLES}


class _Visible(HTMLParser):
    """Text a user reads: text nodes (not scripts/styles) and the title, alt and placeholder attributes. Cells
    marked `verbatim` (the audit log's target and detail, a report's recorded gap details: shown exactly as
    recorded) and `<code>` (a command the user types, an identifier such as a time zone) are left out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping: list[str] = []  # the open elements whose text is not UI text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code") or "verbatim" in (dict(attrs).get("class") or "").split():
            self._skipping.append(tag)
        for name, value in attrs:
            if name in ("title", "alt", "placeholder") and value and not self._skipping:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(parser.parts)


def problems(text: str, lang: str) -> list[str]:
    found = []
    words = set(re.findall(r"[A-Za-z][A-Za-z_]+", text))
    codes = {code for kind in CODE_KINDS for code in ENUMS[kind]} - set(ROLES)  # user names are data
    found += [f"raw code {w!r}" for w in sorted(words & codes) if "_" in w or lang == "zh"]
    found += [f"untranslated key {w!r}" for w in sorted(words & set(TEXT)) if "_" in w]
    if lang == "zh":
        latin = {w for w in words if len(w) >= 3 and w not in ALLOWED_LATIN}
        found += [f"English word {w!r}" for w in sorted(latin)]
    return found
