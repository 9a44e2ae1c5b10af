"""Print the raw and gzipped size of each chat widget file and the totals.

Run with ``python evaluation/widget_size.py``; ``make bench`` calls it.
The budget is 15 KB gzipped for what a page loads by default (the script, the
stylesheet and the English strings).
"""

from __future__ import annotations

import gzip
from pathlib import Path

WIDGET_DIR = Path(__file__).resolve().parents[1] / "bot" / "dashboard" / "web" / "static" / "widget"
DEFAULT_LOAD = ("chat-widget.js", "chat-widget.css", "i18n/en.js")
BUDGET_GZIP_BYTES = 15 * 1024


def measure(path: Path) -> tuple[int, int]:
    """Return the raw and gzipped (level 9) size of ``path`` in bytes."""
    data = path.read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=9, mtime=0))


def main() -> None:
    """Print one line per widget file, then the default-load and all-files totals."""
    files = sorted(
        p for p in WIDGET_DIR.rglob("*") if p.suffix in {".js", ".css"} and "node_modules" not in p.parts
    )
    sizes = {p.relative_to(WIDGET_DIR).as_posix(): measure(p) for p in files}
    width = max(len(name) for name in [*sizes, "total (default load)"])
    print(f"{'file':<{width}}  {'raw':>8}  {'gzip':>8}")
    for name, (raw, packed) in sizes.items():
        print(f"{name:<{width}}  {raw:>8}  {packed:>8}")
    default = [sizes[name] for name in DEFAULT_LOAD if name in sizes]
    for label, rows in (("total (default load)", default), ("total (all files)", list(sizes.values()))):
        raw, packed = sum(r for r, _ in rows), sum(g for _, g in rows)
        print(f"{label:<{width}}  {raw:>8}  {packed:>8}")
    packed_default = sum(g for _, g in default)
    verdict = "within" if packed_default <= BUDGET_GZIP_BYTES else "OVER"
    print(f"default load is {packed_default} B gzipped, {verdict} the {BUDGET_GZIP_BYTES} B budget")


if __name__ == "__main__":
    main()
