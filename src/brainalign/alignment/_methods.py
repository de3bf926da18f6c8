"""One unit of a sweep: all layers of one model against one subject's ROI, for one method.

The maths lives in the method rooms (``brainalign.rsa``, ``brainalign.topology``,
``brainalign.encoding``, ``brainalign.stats``); here the scores of every layer are computed
with the same bootstrap replicates (resampled stimuli, paired across layers) so that the
probability of each layer being the best (``p_best``) can be read off them, and the same
permutations give each layer's p-value.

Unit functions take and return plain data (dicts of arrays, lists of dicts) so that they
run the same in this process, in a thread pool or on a Dask worker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RSA_DEFAULTS = {"rdm_method": "correlation", "compare": "corr", "time_window": None}
TRSA_DEFAULTS = {"rdm_method": "correlation", "compare": "corr", "low": 0.25, "up": 0.75,
                 "transform": "geotopological", "time_window": None}
TRANSFORMS = ("geotopological", "geodesic")


# --------------------------------------------------------------------------- shared maths hooks
def topo_transform(rdms: np.ndarray, options: dict) -> np.ndarray:
    """Geo-topological transform of (k, n, n) RDMs with brainalign.topology."""
    from .. import topology

    fn = getattr(topology, options.get("transform", "geotopological"))
    out = fn(rdms, low=float(options["low"]), up=float(options["up"]))
    mats = out.get_matrices() if hasattr(out, "get_matrices") else np.asarray(out)
    return np.asarray(mats, dtype=float).reshape(rdms.shape)


# --------------------------------------------------------------------------- RSA / tRSA units
def _seeds(random_state: int) -> tuple[int, int]:
    """Independent seeds for the bootstrap and the permutations of one unit."""
    a, b = np.random.SeedSequence(int(random_state)).generate_state(2)
    return int(a), int(b)


def rsa_unit(spec: dict) -> list[dict]:
    """Score every layer RDM against the subject's ROI RDM, with bootstrap CI and permutation p.

    Bootstrap: :func:`brainalign.rsa.bootstrap` (conditions resampled with replacement,
    self-pairs dropped as in rsatoolbox), which scores every layer on the *same* draws: the
    paired replicates give ``p_best``. Permutation: the brain RDM's condition labels are
    shuffled (:func:`brainalign.rsa.permutation_test`, streamed in blocks).
    """
    from ..rsa import bootstrap, compare, permutation_test

    layer_mats = np.asarray(spec["layer_rdms"], dtype=float)  # (L, n, n)
    brain = np.asarray(spec["brain_rdm"], dtype=float)  # (n, n)
    opts, method = spec["options"], spec["options"]["compare"]
    if spec["method"] == "trsa":
        layer_mats = topo_transform(layer_mats, opts)
        brain = topo_transform(brain[None], opts)[0]
    boot_seed, perm_seed = _seeds(spec["random_state"])
    n = brain.shape[0]
    iu = np.triu_indices(n, 1)
    layer_vecs = layer_mats[:, iu[0], iu[1]]
    scores = np.asarray(compare(layer_vecs, brain[iu][None], method=method), dtype=float)[:, 0]
    n_resamples, n_permutations = int(spec["n_resamples"]), int(spec["n_permutations"])
    boot = np.full((n_resamples, len(scores)), np.nan)
    if n_resamples >= 2:
        boot = bootstrap(layer_vecs, brain[iu][None], method=method, n_resamples=n_resamples, resample="stimuli",
                         ci=float(spec.get("ci", 0.95)), random_state=boot_seed).samples
    null = None
    if n_permutations:  # the brain RDM's condition labels shuffled, streamed in memory-bounded blocks
        null = permutation_test(layer_vecs, brain[iu], method=method, n_permutations=n_permutations,
                                random_state=perm_seed).null  # (n_permutations, L)
    return _rows(spec, scores, boot, null, metric=(f"trsa-{method}" if spec["method"] == "trsa" else method),
                 extra={"n_conditions": n})


def _rows(spec: dict, scores: np.ndarray, boot: np.ndarray, null: np.ndarray | None, *, metric: str,
          extra: dict | None = None) -> list[dict]:
    alpha = (1 - spec.get("ci", 0.95)) / 2
    valid = np.isfinite(boot).all(axis=1)
    boot = boot[valid]
    if len(boot):
        lo, hi = np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0)
        p_best = np.bincount(np.argmax(boot, axis=1), minlength=len(scores)) / len(boot)
    else:
        lo = hi = p_best = np.full(len(scores), np.nan)
    if null is not None and len(null):
        # null of the ROI-level score itself (one value per permutation and layer), so the
        # p-value is read off here, with the convention of brainalign.stats.permutation_test
        p = (1 + (null >= scores[None]).sum(axis=0)) / (1 + len(null))
    else:
        p = np.full(len(scores), np.nan)
    ceil_lo, ceil = spec.get("ceiling", (np.nan, np.nan))
    ceiling = np.asarray(spec.get("ceiling_per_layer", [ceil] * len(scores)), dtype=float)
    rows = []
    for k, layer in enumerate(spec["layers"]):
        c = float(ceiling[k])
        rows.append({
            "model": spec["model"], "layer": layer, "layer_index": k, "layer_depth": spec["depths"][k],
            "subject": spec["subject"], "roi": spec["roi"], "method": spec["method"], "metric": metric,
            "score": float(scores[k]), "ceiling": c,
            "normalized_score": float(scores[k] / c) if np.isfinite(c) and c > 0 else np.nan,
            "ci_low": float(lo[k]), "ci_high": float(hi[k]), "p": float(p[k]),
            "ceiling_low": float(ceil_lo), "p_best": float(p_best[k]), **(extra or {}),
        })
    return rows


def encoding_unit(spec: dict) -> list[dict]:
    """The encoding-like units (``encoding``, ``banded``, ``trf``) of :mod:`._encoding_units`."""
    from ._encoding_units import ENCODING_UNITS

    return ENCODING_UNITS[spec["method"]](spec)


UNITS = {"rsa": rsa_unit, "trsa": rsa_unit, "encoding": encoding_unit, "banded": encoding_unit, "trf": encoding_unit}


def run_unit(spec: dict[str, Any]) -> list[dict]:
    """Dispatch one unit (module-level so that Dask workers can import it)."""
    return UNITS[spec["method"]](spec)
