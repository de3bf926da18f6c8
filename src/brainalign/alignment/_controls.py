"""Control baselines scored beside every model, and nuisance feature spaces.

A layer profile means little on its own: a layer can predict a voxel because it tracks when
words occur, how long they are, or the slow drift of a story, none of which needs the model's
training. Two baselines say how much of a score is more than that:

* ``random_weights``: the same architecture with random weights (initialised as the model's
  library initialises a new model, seeded), reading the same words with the same context;
* ``shuffled_words``: the model's own features, with the words shuffled within each story
  (each word keeps its onset but gets the features of another word of the same story): the
  timing and the feature statistics stay, the link between a word and its features goes.

:func:`rate_features` gives the nuisance spaces of story datasets (word rate, phoneme rate)
for banded ridge and variance partitioning.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .._docs import fill_doc
from .._utils import check_option, check_random_state, logger

CONTROLS = ("random_weights", "shuffled_words")


def control_name(model: str, kind: str) -> str:
    """The model name of a control baseline in the results table: ``"<model>[<kind>]"``."""
    return f"{model}[{kind}]"


@fill_doc
def control_features(features: Any, kind: str, *, stimuli: Any = None, random_state: Any = 0) -> Any:
    """A control baseline of a model's features.

    Parameters
    ----------
    features : Features or FeatureExtractor
        ``"shuffled_words"`` takes the model's Features (or an extractor and ``stimuli``);
        ``"random_weights"`` needs the extractor (its architecture, tokenizer, layers,
        pooling and context are kept).
    kind : {"random_weights", "shuffled_words"}
    stimuli : Stimuli, optional
        The items to extract (an extractor only).
    %(random_state)s
        Seeds the permutation or the weight initialisation.

    Returns
    -------
    Features
        The same items (and item table) as the model's features, with ``provenance["control"]``
        set; for ``"shuffled_words"`` the rows are permuted within each story (the ``run``
        column of the item table; all items when there is none).

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import Features
    >>> f = Features({"l0": np.arange(4.0)[:, None]}, items=list("abcd"),
    ...              item_table={"run": ["r1", "r1", "r2", "r2"], "onset": [0.0, 1.0, 0.0, 1.0]})
    >>> sorted(control_features(f, "shuffled_words")["l0"][:2, 0].tolist())
    [0.0, 1.0]
    """
    check_option("kind", kind, CONTROLS)
    from ..data import Features

    if kind == "random_weights":
        if not hasattr(features, "extract"):
            raise TypeError(
                "The 'random_weights' control re-runs the model's architecture with random weights, so it needs the "
                f"FeatureExtractor (and stimuli=), not {type(features).__name__}; give the extractor.")
        if stimuli is None:
            raise ValueError("The 'random_weights' control extracts features of the stimuli: pass stimuli=.")
        feats = random_weights_extractor(features, random_state=random_state).extract(stimuli)
        return Features({name: feats[name] for name in feats.layer_names}, items=feats.items,
                        item_table=feats.item_table, provenance={**feats.provenance, "control": kind})
    if hasattr(features, "extract") and not isinstance(features, Features):
        if stimuli is None:
            raise ValueError("features is an extractor: pass stimuli= to extract the features to shuffle.")
        features = features.extract(stimuli)
    rng = check_random_state(random_state)
    table = features.item_table
    groups = (table["run"].astype(str).to_numpy() if table is not None and "run" in table.columns
              else np.zeros(features.n_items, dtype=object))
    order = np.arange(features.n_items)
    for g in dict.fromkeys(groups):
        idx = np.flatnonzero(groups == g)
        order[idx] = idx[rng.permutation(len(idx))]
    prov = {**features.provenance, "control": kind}
    return Features({name: np.asarray(features[name])[order] for name in features.layer_names}, items=features.items,
                    item_table=table, provenance=prov)


def random_weights_extractor(extractor: Any, *, random_state: Any = 0) -> Any:
    """A FeatureExtractor of the same architecture with random weights (seeded).

    Hugging Face models are rebuilt from their config (``AutoModel.from_config``: the
    library's own initialisation); other torch modules are deep-copied and every submodule's
    ``reset_parameters()`` is called. Tokenizer, layers, pooling, context, device and cache
    folder are those of ``extractor``.
    """
    import torch

    from ..features import FeatureExtractor

    seed = int(check_random_state(random_state).integers(0, 2**31 - 1))
    source = extractor.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = getattr(source, "config", None)
        if config is not None and hasattr(source, "main_input_name"):
            from transformers import AutoModel

            module = AutoModel.from_config(copy.deepcopy(config))
        else:
            module = copy.deepcopy(source)
            for sub in module.modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
    module.eval()
    logger.info("random-weights control of %s (seed %d)", extractor.model_id, seed)
    return FeatureExtractor(
        module, processor=extractor.processor, preprocess=getattr(extractor.handle, "preprocess", None),
        layers=extractor.layers, pooling=extractor.pooling, device=extractor.device_,
        dtype=str(extractor.dtype), batch_size=extractor.batch_size, context=extractor.context,
        stride=extractor.stride, cache_dir=extractor.cache_dir, verbose=extractor.verbose,
        model_id=control_name(extractor.model_id, "random_weights") + f"-seed{seed}")


def rate_features(stimuli: Any, *, name: str = "word_rate") -> Any:
    """A nuisance feature space: one column of ones per timed item (word, phoneme).

    Put on the sample grid by :func:`brainalign.features.timing.align_to` (Lanczos or sum per
    bin) it is the item rate of every sample (words per TR, phonemes per TR), the nuisance
    band of story-listening encoding models.

    Parameters
    ----------
    stimuli : Stimuli
        Timed items (``onset``, and ``run`` for several stories).
    name : str
        The layer name (and what the band is called).

    Returns
    -------
    Features
        One layer ``name`` of shape (n_items, 1).

    Examples
    --------
    >>> from brainalign import Stimuli
    >>> words = Stimuli.from_words(["a", "cat"], [0.5, 0.9])
    >>> rate_features(words)["word_rate"].shape
    (2, 1)
    """
    from ..data import Features

    table = stimuli.table
    if "onset" not in table.columns:
        raise ValueError(f"rate_features needs timed items (an 'onset' column); the stimuli have {list(table.columns)}.")
    return Features({name: np.ones((len(table), 1), np.float32)}, items=list(table["stimulus_id"]), item_table=table,
                    provenance={"model_id": name, "source": "rate"})
