"""Group-level (random-effects) inference on a sweep table: does layer L beat L', model M beat M'?

Per-subject bootstraps say how sure we are *for that subject and these stimuli*; a claim about
people needs subjects as the random effect. :func:`compare_layers` tests every pair of layers
(or of models) within each group of the table across subjects, with the tests of
:mod:`brainalign.stats` (sign-flip permutation, t-test, and the joint subject x stimulus
bootstrap when the sweep kept per-subject stimulus replicates drawn on the same stimuli) and a
named multiple-comparison correction; :func:`group_p_best` gives the probability that each
layer (or model) is the best under subject resampling, and under subject x stimulus resampling
when the replicates are there.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._utils import Bunch, as_list, check_option, check_random_state
from ._table import SweepUnits, _frozen, check_results

#: Subject-level tests of :func:`compare_layers` (those of :func:`brainalign.stats.pairwise_comparisons`).
GROUP_TESTS = ("sign_flip", "t", "bootstrap")
#: Multiple-comparison corrections of :func:`compare_layers` (those of :func:`brainalign.stats.pairwise_comparisons`).
CORRECTIONS = ("holm", "fdr_bh", "max_stat", "none")
LEVELS = ("layer", "model")
_LOSO = "leave-one-subject-out"


class UnitReplicates(SweepUnits):
    """Per-subject stimulus replicates kept by a sweep: ``"method|model|subject|roi" -> Bunch``.

    Each value holds ``samples`` (array (n_resamples, n_layers): the unit's bootstrap scores of
    every layer, on the ``score`` scale), ``draws`` (an identifier of the stimulus draws: units
    with the same identifier were scored on the same resampled stimuli) and ``n_stimuli``.
    Read-only, and shared rather than copied when pandas copies a table's ``attrs``.
    """

    _what = "replicates"
    _key_form = "method|model|subject|roi"

    @staticmethod
    def _value(rep: Any) -> Bunch:
        return Bunch(samples=_frozen(rep["samples"]), draws=str(rep["draws"]), n_stimuli=int(rep["n_stimuli"]))


# --------------------------------------------------------------------------- families
def _check_args(results: Any, by: Any, level: str, score: str, what: str) -> tuple[pd.DataFrame, list[str]]:
    df = check_results(results, ["model", "layer", "layer_index", "subject", score], what)
    check_option("level", level, LEVELS)
    check_option("score", score, ["score", "normalized_score"])
    by = [c for c in as_list(by) if c not in ("subject", "model", "layer")]
    for col in by:
        if col not in df:
            raise ValueError(f"Cannot group by {col!r}: not a column of the table ({list(df.columns)}).")
    df = df[df["subject"].astype(str) != "all"]
    return df, by


def _key(by: list[str], key: Any) -> dict:
    return dict(zip(by, key if isinstance(key, tuple) else (key,)))


def _pivot(g: pd.DataFrame, score: str, where: str) -> pd.DataFrame:
    """subject x layer matrix of one model (columns in layer order), with a clear error for duplicates."""
    dup = g.duplicated(["subject", "layer"])
    if dup.any():
        r = g[dup].iloc[0]
        raise ValueError(f"{where}: subject {r['subject']!r} has several rows for layer {r['layer']!r} of model "
                         f"{r['model']!r}; add the columns that tell them apart (e.g. 'method', 'roi') to by=.")
    order = g.drop_duplicates("layer").sort_values("layer_index")["layer"].tolist()
    return g.pivot(index="subject", columns="layer", values=score)[order]


def _complete(piv: pd.DataFrame, where: str) -> pd.DataFrame:
    bad = piv.index[piv.isna().any(axis=1)].tolist()
    if bad:
        warnings.warn(f"{where}: subjects {bad[:5]}{' ...' if len(bad) > 5 else ''} lack a score for some layer and "
                      "are left out of the group-level test.", stacklevel=4)
    return piv.dropna(axis=0, how="any")


def _families(df: pd.DataFrame, by: list[str], level: str, score: str, layers: Any) -> list[Bunch]:
    """The families of candidates compared together: subjects x candidates scores and what each cell is."""
    fams = []
    if level == "layer":
        groups = df.groupby(by + ["model"], sort=False, dropna=False)
        for key, g in groups:
            keyd = _key(by + ["model"], key)
            where = ", ".join(f"{k}={v!r}" for k, v in keyd.items())
            piv = _complete(_pivot(g, score, where), where)
            index = g.drop_duplicates("layer").set_index("layer")["layer_index"].reindex(piv.columns).to_numpy(int)
            fams.append(Bunch(key=keyd, g=g, S=piv.to_numpy(float), subjects=list(piv.index),
                              models=[keyd["model"]] * piv.shape[1], layers=list(piv.columns),
                              layer_index=np.broadcast_to(index, piv.shape).copy(), selection="all layers",
                              where=where))
        return fams
    groups = df.groupby(by, sort=False, dropna=False) if by else [((), df)]
    for key, g in groups:
        keyd = _key(by, key)
        where = ", ".join(f"{k}={v!r}" for k, v in keyd.items()) or "the table"
        models = list(dict.fromkeys(g["model"]))
        pivs = {m: _complete(_pivot(g[g["model"] == m], score, where), where) for m in models}
        subjects = [s for s in pivs[models[0]].index if all(s in p.index for p in pivs.values())]
        S = np.full((len(subjects), len(models)), np.nan)
        L = np.zeros((len(subjects), len(models)), dtype=int)
        labels = []
        for j, m in enumerate(models):
            piv = pivs[m].loc[subjects]
            idx_of = g[g["model"] == m].drop_duplicates("layer").set_index("layer")["layer_index"]
            mat = piv.to_numpy(float)
            if isinstance(layers, Mapping):
                if m not in layers or layers[m] not in piv.columns:
                    raise ValueError(f"layers= names no layer of model {m!r} in {where} "
                                     f"(given {layers.get(m)!r}; its layers are {list(piv.columns)}).")
                chosen = np.full(len(subjects), list(piv.columns).index(layers[m]))
            elif len(subjects) >= 2:  # each subject's layer is the best of the *other* subjects (no double dipping)
                others = (mat.sum(0)[None] - mat) / (len(subjects) - 1)
                chosen = others.argmax(axis=1)
            else:
                chosen = np.zeros(len(subjects), dtype=int)
            S[:, j] = mat[np.arange(len(subjects)), chosen]
            names = [piv.columns[c] for c in chosen]
            L[:, j] = idx_of.reindex(names).to_numpy(int)
            labels.append(pd.Series(names).mode().iloc[0] if names else None)
        fams.append(Bunch(key=keyd, g=g, S=S, subjects=subjects, models=models, layers=labels, layer_index=L,
                          selection="fixed" if isinstance(layers, Mapping) else _LOSO, where=where))
    return fams


def _family_replicates(results: pd.DataFrame, fam: Bunch) -> tuple[np.ndarray | None, int | None, str]:
    """(n_subjects, n_resamples, n_candidates) stimulus replicates of a family, or None and why."""
    reps = results.attrs.get("replicates")
    if not reps:
        return None, None, "the table holds no stimulus replicates (table.attrs['replicates'])"
    g = fam.g
    for col in ("method", "roi"):
        if col not in g or g[col].nunique() != 1:
            return None, None, f"the group mixes several values of {col!r}"
    method, roi = g["method"].iloc[0], g["roi"].iloc[0]
    arrays, draws, n_stim = [], set(), set()
    for s, subj in enumerate(fam.subjects):
        cols = []
        for c, model in enumerate(fam.models):
            rep = reps.get(f"{method}|{model}|{subj}|{roi}")
            if rep is None:
                return None, None, (f"no stimulus replicates for method {method!r} (the sweep keeps them for the "
                                    "similarity measures, whose stimulus draws are shared by every subject)")
            draws.add(rep.draws)
            n_stim.add(rep.n_stimuli)
            cols.append(rep.samples[:, fam.layer_index[s, c]])
        if len({len(c) for c in cols}) != 1:
            return None, None, "the units hold different numbers of replicates"
        arrays.append(np.stack(cols, axis=1))
    if len(draws) != 1 or len({a.shape[0] for a in arrays}) != 1:
        return None, None, ("the subjects' replicates were drawn on different stimuli (different stimulus sets, "
                            "random_state or n_resamples)")
    R = np.stack(arrays)  # (n_subjects, n_resamples, n_candidates)
    ok = np.isfinite(R).all(axis=(0, 2))  # a draw undefined for one subject is dropped for every subject
    if ok.sum() < 2:
        return None, None, "fewer than 2 stimulus draws are defined for every subject"
    return R[:, ok], n_stim.pop(), ""


# --------------------------------------------------------------------------- public
@fill_doc
def compare_layers(results: pd.DataFrame, *, by: Sequence[str] = ("method", "roi"), level: str = "layer",
                   test: str = "sign_flip", correction: str = "holm", score: str = "score", alpha: float = 0.05,
                   tail: str = "two-sided", layers: Any = "loso", n_permutations: int = 10000,
                   random_state: Any = 0) -> pd.DataFrame:
    """Every pair of layers (or models) compared across subjects, with a named correction.

    Within each group of ``by`` (and, for ``level="layer"``, each model) the per-subject
    scores form a subjects x candidates matrix; every pair of candidates is tested with
    subjects as the random effect (:func:`brainalign.stats.pairwise_comparisons`), and the
    p-values of the pairs of one family (one model's layers, or the models of one group) are
    corrected together:

    - ``test="sign_flip"``: the paired differences' signs flipped at random (exact when
      ``2**n_subjects <= n_permutations``); ``"t"``: one-sample t-test of the differences;
      ``"bootstrap"``: the joint subject x stimulus bootstrap (rsatoolbox's, Schütt et al.
      2023), which also generalizes over stimuli; it needs the per-subject stimulus replicates
      that :func:`sweep` keeps for the similarity measures (``table.attrs["replicates"]``, the
      same stimulus draws for every subject). The sign-flip and t-tests treat the stimuli as
      fixed: "L beats L' for people, on these stimuli".
    - ``correction``: ``"holm"`` (family-wise error), ``"fdr_bh"`` (false discovery rate),
      ``"max_stat"`` (family-wise, by the maximum statistic over the family's sign flips) or
      ``"none"``.

    With ``level="model"`` every model is represented in each subject by one layer: by
    default the layer with the best mean score over the *other* subjects
    (leave-one-subject-out), so that choosing the layer and testing it never use the same
    subject's data; ``layers={model: layer}`` fixes them instead.

    Parameters
    ----------
    results : DataFrame
        The tidy table of :func:`sweep` (rows with ``subject == "all"`` are ignored).
    by : sequence of str
        Columns that define a group (one test family per group and, for layers, per model).
    level : {"layer", "model"}
    test : {"sign_flip", "t", "bootstrap"}
    correction : {"holm", "fdr_bh", "max_stat", "none"}
    score : {"score", "normalized_score"}
        Column compared (``"bootstrap"`` needs ``"score"``, the scale of the replicates).
    alpha : float
        Level of the ``reject`` decision.
    tail : {"two-sided", "greater", "less"}
        ``"greater"``: candidate ``a`` better than ``b`` under the alternative.
    layers : "loso" or dict model -> layer
        How ``level="model"`` picks each model's layer.
    %(n_permutations)s
        Sign flips (random when ``2**n_subjects`` exceeds it).
    %(random_state)s

    Returns
    -------
    DataFrame
        One row per pair and family: the ``by`` columns, ``level``, ``model_a``, ``layer_a``,
        ``model_b``, ``layer_b`` (for models: the layer chosen for most subjects), ``mean_a``,
        ``mean_b``, ``difference`` (mean over subjects of a - b), ``statistic`` (t), ``p``,
        ``p_corrected``, ``reject``, ``test``, ``correction``, ``n_subjects``,
        ``n_comparisons`` (pairs in the family) and ``layer_selection``. Families with fewer
        than 2 complete subjects or candidates are left out.

    Examples
    --------
    >>> pairs = compare_layers(table, test="sign_flip", correction="holm")  # doctest: +SKIP
    >>> pairs[pairs["reject"]][["roi", "layer_a", "layer_b", "difference", "p_corrected"]]  # doctest: +SKIP
    """
    from ..stats import pairwise_comparisons

    df, by = _check_args(results, by, level, score, "compare_layers")
    check_option("test", test, GROUP_TESTS)
    check_option("correction", correction, CORRECTIONS)
    if test == "bootstrap" and score != "score":
        raise ValueError("test='bootstrap' resamples the stimulus replicates, which are on the 'score' scale; use "
                         "score='score' (or test='sign_flip' / 't' for normalized scores).")
    if not (isinstance(layers, Mapping) or layers == "loso"):
        raise ValueError(f"layers must be 'loso' or a dict model -> layer; got {layers!r}.")
    rng = check_random_state(random_state)
    out, notes = [], {}
    for fam in _families(df, by, level, score, layers):
        n_subj, n_cand = fam.S.shape
        if n_subj < 2 or n_cand < 2:
            continue
        kw = {}
        if test == "bootstrap":
            R, n_stim, why = _family_replicates(results, fam)
            if R is None:
                raise ValueError(f"test='bootstrap' in {fam.where}: {why}. Use test='sign_flip' or 't' (subjects as "
                                 "the random effect, stimuli fixed).")
            kw = dict(stimulus_replicates=R, n_stimuli=n_stim)
        with warnings.catch_warnings(record=True) as caught:  # e.g. "too few subjects": said once, not per family
            warnings.simplefilter("always")
            table = pairwise_comparisons(fam.S, labels=[str(k) for k in range(n_cand)], test=test,
                                         correction=correction, alpha=alpha, tail=tail, n_permutations=n_permutations,
                                         random_state=rng, **kw)
        notes.update({str(w.message): w.category for w in caught})
        a, b = table["a"].astype(int).to_numpy(), table["b"].astype(int).to_numpy()
        rows = pd.DataFrame({
            **{k: [v] * len(table) for k, v in fam.key.items() if k != "model"}, "level": level,
            "model_a": [fam.models[i] for i in a], "layer_a": [fam.layers[i] for i in a],
            "model_b": [fam.models[i] for i in b], "layer_b": [fam.layers[i] for i in b],
        })
        for col in ("mean_a", "mean_b", "difference", "statistic", "p", "p_corrected", "reject", "test",
                    "correction", "n_subjects"):
            rows[col] = table[col].to_numpy()
        rows["n_comparisons"] = len(table)
        rows["layer_selection"] = fam.selection
        out.append(rows)
    for message, category in notes.items():
        warnings.warn(message, category, stacklevel=2)
    if not out:
        raise ValueError("compare_layers found no group with at least 2 subjects and 2 "
                         f"{'layers' if level == 'layer' else 'models'} to compare (subjects in the table: "
                         f"{sorted(map(str, df['subject'].unique()))[:8]}); group-level tests need several subjects.")
    return pd.concat(out, ignore_index=True)


@fill_doc
def group_p_best(results: pd.DataFrame, *, by: Sequence[str] = ("method", "roi"), level: str = "layer",
                 score: str = "score", layers: Any = "loso", n_resamples: int = 1000,
                 random_state: Any = 0) -> pd.DataFrame:
    """Probability that each layer (or model) is the best, across subjects and stimuli.

    ``p_best`` resamples subjects (:func:`brainalign.stats.p_best`): how often each candidate
    has the best mean over a new draw of subjects. ``p_best_joint`` resamples subjects and
    stimuli together, from the per-subject stimulus replicates the sweep keeps for the
    similarity measures (NaN where there are none): it also accounts for the choice of
    stimuli. The families are those of :func:`compare_layers`.

    Parameters
    ----------
    results : DataFrame
        The tidy table of :func:`sweep`.
    by, level, score, layers
        As in :func:`compare_layers`.
    %(n_resamples)s
        Subject resamples of ``p_best`` (``p_best_joint`` uses the replicates' own number).
    %(random_state)s

    Returns
    -------
    DataFrame
        One row per candidate: the ``by`` columns, ``level``, ``model``, ``layer``,
        ``mean_score`` (over subjects), ``p_best``, ``p_best_joint``, ``n_subjects``,
        ``layer_selection``.

    Examples
    --------
    >>> group_p_best(table).sort_values("p_best").tail(3)  # doctest: +SKIP
    """
    from ..stats import p_best

    df, by = _check_args(results, by, level, score, "group_p_best")
    rng = check_random_state(random_state)
    out = []
    for fam in _families(df, by, level, score, layers):
        n_subj, n_cand = fam.S.shape
        if n_subj < 2:
            continue
        pb = p_best(fam.S, n_resamples=n_resamples, random_state=rng)
        R, _, _ = _family_replicates(results, fam)
        joint = p_best(fam.S, stimulus_replicates=R) if R is not None else np.full(n_cand, np.nan)
        for c in range(n_cand):
            out.append({**{k: v for k, v in fam.key.items() if k != "model"}, "level": level,
                        "model": fam.models[c], "layer": fam.layers[c], "mean_score": float(fam.S[:, c].mean()),
                        "p_best": float(pb[c]), "p_best_joint": float(joint[c]), "n_subjects": n_subj,
                        "layer_selection": fam.selection})
    if not out:
        raise ValueError("group_p_best found no group with at least 2 subjects; it resamples subjects.")
    return pd.DataFrame(out)


def subject_p_best(results: pd.DataFrame, g: pd.DataFrame, cand: pd.DataFrame, mat: np.ndarray, subjects: list,
                   n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``stats.p_best`` of a (subjects x candidates) matrix for :func:`assign_layers`: subjects resampled,
    and stimuli too when every cell has replicates drawn on the same stimuli. NaN when < 2 complete subjects."""
    from ..stats import p_best

    keep = np.isfinite(mat).all(axis=1)
    if keep.sum() < 2:
        return np.full(mat.shape[1], np.nan)
    S = mat[keep]
    index = np.broadcast_to(cand["layer_index"].to_numpy(int) if "layer_index" in cand else np.zeros(len(cand), int),
                            S.shape)
    fam = Bunch(g=g, subjects=[s for s, k in zip(subjects, keep) if k], models=cand["model"].tolist(),
                layer_index=index)
    R, _, _ = _family_replicates(results, fam)
    if R is not None:
        return p_best(S, stimulus_replicates=R)
    return p_best(S, n_resamples=n_resamples, random_state=rng)
