"""Where the project's built artefacts live, for any package to read (standard library only).

The build steps write these and the packages that use them read them, so the paths sit here,
below both: the safety screen loads the spaCy pipeline without importing the code that builds
it (:mod:`bot.assistant.nlp.pipeline`).
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO_ROOT / "build"
#: The project's spaCy pipeline: written by ``python -m bot.assistant.nlp.pipeline``, loaded by Rasa and the safety screen.
SPACY_PIPELINE_DIR = BUILD_DIR / "spacy" / "en_dry_needling"
