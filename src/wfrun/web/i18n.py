"""The console's words in English and Chinese. The browser's ``Accept-Language`` picks one;
the switch in the header overrides it with a cookie. Both catalogues hold every key (a test
checks it); a missing key shows the key itself rather than failing a page."""

from __future__ import annotations

from typing import Any

from wfrun.web.words_en import EN
from wfrun.web.words_zh import ZH

COOKIE = "wfrun_lang"
LANGUAGES = ("en", "zh")
CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "zh": ZH}


def pick(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's language when it names one; else the first supported language of
    ``Accept-Language`` by quality; else English."""
    if cookie in LANGUAGES:
        return cookie
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return min(ranked)[2] if ranked else "en"


def text(lang: str, key: str, **values: Any) -> str:
    template = CATALOGUES.get(lang, EN).get(key) or EN.get(key) or key
    return template.format(**values) if values else template
