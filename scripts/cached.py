"""Run a slow build step once per set of inputs; restore its output from a cache after that.

The spaCy pipeline, the MiniLM conversion and the trained Rasa model are pure functions
of files in this repository (data, config, code, the pinned requirements). This script
hashes those files, and:

- on a hit, copies the stored output into place without running the command;
- on a miss, runs the command and stores what it produced under that hash.

A different byte in any input is a different key, so an output is never reused for other
inputs. The cache lives outside the clone, in ``$DRY_NEEDLING_CACHE`` or else
``${XDG_CACHE_HOME:-~/.cache}/dry-needling-assistant/<kind>/<key>``; ``make clean``
leaves it, ``rm -rf`` of that folder clears it, and ``DRY_NEEDLING_CACHE=off`` turns it
off (the command then always runs). The newest few entries of each kind are kept.

Usage (the Makefile's build rules)::

    python scripts/cached.py spacy --input data/patterns --imports-of bot/assistant/nlp/pipeline.py \\
        --output build/spacy -- .venv/bin/python -m bot.assistant.nlp.pipeline
    python scripts/cached.py model --input config.yml ... --new-files 'models/*.tar.gz' \\
        -- .venv/bin/rasa train --quiet

``--output`` names a file or folder the command writes (replaced as a whole on a hit);
``--new-files`` a glob whose files the command creates (a Rasa model's name has a
timestamp): the files that are new or changed after the command are stored, and on a hit
copied back under their stored names, with a fresh modification time (Rasa loads the
newest model).
"""

from __future__ import annotations

import argparse
import ast
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("bot", "actions")
SKIPPED_PARTS = {"__pycache__", ".pytest_cache"}
KEEP_PER_KIND = 4
FILES_DIR = "files"


def cache_root() -> Path | None:
    """Where entries live; None when the cache is turned off."""
    configured = os.environ.get("DRY_NEEDLING_CACHE", "")
    if configured.lower() in ("off", "0", "false", "no"):
        return None
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dry-needling-assistant"


def _files_under(path: Path) -> Iterable[Path]:
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and not SKIPPED_PARTS.intersection(child.parts) and child.suffix != ".pyc":
                yield child
    elif path.is_file():
        yield path


def _module_file(name: str) -> Path | None:
    """The source file of a first-party module (``bot.x.y``), if there is one."""
    base = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(source: Path) -> set[str]:
    """First-party modules a Python file imports (statically), including its parent packages."""
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    package = ".".join(source.relative_to(REPO_ROOT).with_suffix("").parts)
    if source.name == "__init__.py":
        package = package.rsplit(".", 1)[0]
    else:
        package = package.rsplit(".", 1)[0] if "." in package else ""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # "from bot.x import module"
    found = {".".join(package.split(".")[:i]) for i in range(1, len(package.split(".")) + 1)} if package else set()
    for name in names:
        if name.split(".")[0] in FIRST_PARTY:
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def import_closure(paths: Iterable[Path]) -> set[Path]:
    """The given Python files and every first-party module they import, transitively."""
    pending = [file for path in paths for file in _files_under(path) if file.suffix == ".py"]
    seen: set[Path] = set()
    while pending:
        file = pending.pop().resolve()
        if file in seen:
            continue
        seen.add(file)
        for module in _imported_modules(file):
            target = _module_file(module)
            if target is not None and target.resolve() not in seen:
                pending.append(target)
    return seen


def cache_key(kind: str, inputs: Iterable[Path], command: list[str]) -> str:
    """sha256 over the kind, the command and every input file's path and bytes."""
    digest = hashlib.sha256()
    digest.update(f"kind={kind}\0command={' '.join(command)}\0".encode())
    files: set[Path] = set()
    for path in inputs:
        if not path.exists():
            digest.update(f"missing={path}\0".encode())
        files.update(file.resolve() for file in _files_under(path))
    for file in sorted(files):
        try:
            name = str(file.relative_to(REPO_ROOT))
        except ValueError:
            name = str(file)
        digest.update(f"file={name}\0".encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _snapshot(pattern: str) -> dict[str, tuple[int, int]]:
    return {path: (os.stat(path).st_mtime_ns, os.stat(path).st_size) for path in glob.glob(pattern)}


def _copy(source: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def _prune(kind_dir: Path, keep: int = KEEP_PER_KIND) -> None:
    entries = [entry for entry in kind_dir.iterdir() if entry.is_dir() and not entry.name.startswith(".")]
    entries.sort(key=lambda entry: entry.stat().st_mtime, reverse=True)
    for entry in entries[keep:]:
        shutil.rmtree(entry, ignore_errors=True)


def restore(entry: Path, outputs: list[Path], new_files: str | None) -> None:
    """Copy a stored entry's files into the working tree."""
    stored = entry / FILES_DIR
    for output in outputs:
        _copy(stored / output, REPO_ROOT / output)
    if new_files:
        folder = REPO_ROOT / Path(new_files).parent
        for file in sorted((stored / "_new").iterdir()):
            _copy(file, folder / file.name)
            os.utime(folder / file.name)
    os.utime(entry)  # recently used: kept by _prune


def store(kind_dir: Path, key: str, outputs: list[Path], created: list[Path]) -> None:
    """Copy the command's outputs into a new entry; a concurrent writer of the same key wins."""
    kind_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=kind_dir))
    try:
        for output in outputs:
            _copy(REPO_ROOT / output, staging / FILES_DIR / output)
        (staging / FILES_DIR / "_new").mkdir(parents=True, exist_ok=True)
        for file in created:
            _copy(file, staging / FILES_DIR / "_new" / file.name)
        try:
            staging.rename(kind_dir / key)
        except OSError:  # already stored by a concurrent run with the same inputs
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(kind_dir)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: cached.py KIND [--input P]... [--imports-of P]... [--output P]... "
              "[--new-files GLOB] -- COMMAND...", file=sys.stderr)
        return 2
    split = argv.index("--")
    own, command = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(prog="cached.py")
    parser.add_argument("kind")
    parser.add_argument("--input", action="append", default=[], type=Path, help="file or folder the output depends on")
    parser.add_argument("--imports-of", action="append", default=[], type=Path,
                        help="Python file or folder: it and the first-party modules it imports are inputs")
    parser.add_argument("--output", action="append", default=[], type=Path, help="file or folder the command writes")
    parser.add_argument("--new-files", help="glob of files the command creates")
    args = parser.parse_args(own)
    if not command or not (args.output or args.new_files):
        parser.error("a command after -- and at least one --output or --new-files are required")

    os.chdir(REPO_ROOT)
    outputs = [Path(os.path.relpath(REPO_ROOT / output, REPO_ROOT)) for output in args.output]
    root = cache_root()
    if root is None:
        return subprocess.call(command)

    started = time.monotonic()
    inputs = [REPO_ROOT / path for path in args.input] + sorted(import_closure(REPO_ROOT / p for p in args.imports_of))
    key = cache_key(args.kind, inputs, command)
    kind_dir = root / args.kind
    entry = kind_dir / key
    if entry.is_dir():
        restore(entry, outputs, args.new_files)
        print(f"cached.py: {args.kind} restored from {entry} ({time.monotonic() - started:.1f} s)")
        return 0

    print(f"cached.py: no {args.kind} for these inputs ({key[:12]}): running {' '.join(command)}")
    before = _snapshot(args.new_files) if args.new_files else {}
    code = subprocess.call(command)
    if code != 0:
        return code
    created = []
    if args.new_files:
        after = _snapshot(args.new_files)
        created = [Path(path) for path, stamp in sorted(after.items()) if before.get(path) != stamp]
        if not created:
            print(f"cached.py: {' '.join(command)} created nothing matching {args.new_files}; not stored")
            return 0
    missing = [str(output) for output in outputs if not (REPO_ROOT / output).exists()]
    if missing:
        print(f"cached.py: {' '.join(missing)} missing after the command; not stored", file=sys.stderr)
        return 1
    store(kind_dir, key, outputs, created)
    print(f"cached.py: {args.kind} stored in {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
