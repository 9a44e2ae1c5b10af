"""Static checks on the widget's source files (no browser needed)."""

from __future__ import annotations

import re
from pathlib import Path

WIDGET_DIR = Path(__file__).resolve().parents[2] / "bot" / "dashboard" / "web" / "static" / "widget"
HTML_SINKS = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write")


def test_widget_scripts_never_parse_strings_as_html():
    scripts = sorted(WIDGET_DIR.rglob("*.js"))
    assert scripts
    offenders = [f"{path.name}:{n}" for path in scripts
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if HTML_SINKS.search(line)]
    assert offenders == []


def test_every_translation_defines_only_known_strings():
    english = set(re.findall(r"^\s+(\w+):", (WIDGET_DIR / "i18n" / "en.js").read_text(encoding="utf-8"), re.MULTILINE))
    for path in (WIDGET_DIR / "i18n").glob("*.js"):
        keys = set(re.findall(r"^\s+(\w+):", path.read_text(encoding="utf-8"), re.MULTILINE))
        assert keys <= english, f"{path.name} has strings the widget never uses: {keys - english}"
