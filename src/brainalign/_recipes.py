"""Analysis recipes: TOML files that say what to compare with what (the shipped ones are in ``encoding/``).

A recipe names a dataset, the models and their layers, the methods and their settings, the
statistics and the outputs. :func:`load_recipe` reads and validates it completely before
anything is computed: an unknown key is an error that names it, lists the allowed keys and
close matches; a wrong type or value names the allowed values, which are taken from the
library's own constants (``brainalign.rsa.RDM_METHODS``, ``brainalign.rsa.COMPARE_METHODS``,
``brainalign.alignment.METHODS`` / ``METHOD_DEFAULTS`` / ``TRSA_TRANSFORMS`` / ``GROUP_TESTS`` /
``CORRECTIONS``; the options of a similarity measure from ``brainalign.similarity.MEASURES``),
so that what validates also runs. Relative paths in a recipe (model folders, BIDS roots, NIfTI files,
events) are resolved against the recipe file's folder. :func:`brainalign.run_recipe`
executes it. The format is documented in ``docs/recipes.md``.

Layout (every section but ``[dataset]``, ``[[models]]`` and ``[methods]`` is optional)::

    [recipe]      name, description, random_state
    [dataset]     name = "kriegeskorte92" | "haxby2001" | "bids" | "fmri" | "lebel2023" | "story_example";
                  rois, subjects, stimulus_key; options of the loader ([dataset.bids] / [dataset.fmri] ...;
                  lebel2023: root, subject, stories; story_example: layout)
    [[models]]    name, source, layers, pooling, context, text, split, batch_size
    [methods]     use = ["rsa", "trsa", "encoding", "banded", "trf", "cka", ...]; controls; [methods.rsa],
                  [methods.trsa], [methods.encoding], [methods.banded], [methods.trf],
                  [methods.<similarity measure>]
    [statistics]  n_resamples, n_permutations, ci, n_jobs, group_test, correction
    [outputs]     figures, dpi, table, html
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Callable

__all__ = ["RecipeError", "load_recipe", "validate_recipe", "schema", "FIGURES", "DATASETS"]


class RecipeError(ValueError):
    """A recipe is malformed; the message names the key, what was found and what is allowed."""


# --------------------------------------------------------------------------- schema
def _int(minimum: int | None = None) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"an integer{'' if minimum is None else f' >= {minimum}'}"
        if minimum is not None and v < minimum:
            return f"an integer >= {minimum}"
        return None
    return check


def _float(lo: float, hi: float) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            return f"a number between {lo} and {hi}"
        return None
    return check


def _str(allowed: list[str] | None = None, prefix: list[str] | None = None) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not isinstance(v, str) or not v:
            return "a non-empty string"
        if allowed is not None and v not in allowed and not (prefix and any(v.startswith(p) for p in prefix)):
            extra = f" or a string starting with {', '.join(repr(p) for p in prefix)}" if prefix else ""
            return f"one of {', '.join(repr(a) for a in allowed)}{extra}"
        return None
    return check


def _str_list(allowed: list[str] | None = None) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or not v:
            return "a non-empty list of strings" + (f" from {allowed}" if allowed else "")
        if allowed is not None:
            bad = [x for x in v if x not in allowed]
            if bad:
                return f"a list of values from {allowed} (unknown: {bad})"
        return None
    return check


def _layers(v: Any) -> str | None:
    if v == "all" or (isinstance(v, list) and v and all(isinstance(x, (str, int)) for x in v)):
        return None
    return "'all' or a non-empty list of layer names / indices"


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _table(v: Any) -> str | None:
    return None if isinstance(v, dict) else "a table of options"


def _number_pair(v: Any) -> str | None:
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return None
    return "a list of two numbers [tmin, tmax]"


FIGURES = ["layer_profile", "model_comparison", "assignment", "rdms", "mds", "brain_map", "similarity_matrix"]
DATASETS = ["kriegeskorte92", "haxby2001", "bids", "fmri", "lebel2023", "story_example"]
#: story datasets: timed words, one run per story; their language models read the words with left context
STORY_DATASETS = ["lebel2023", "story_example"]
SOURCES = ["minilm"]
SOURCE_PREFIXES = ["dataset:", "hf:", "onehot:", "rate:", "npy:"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: keys of the loader tables whose string values are paths (resolved against the recipe's folder);
#: "" names keys of [dataset] itself
PATH_KEYS = {"bids": ("root", "raw_root"), "fmri": ("bold", "mask", "atlas", "events"), "": ("root",)}


def _name(v: Any) -> str | None:
    if isinstance(v, str) and _NAME.match(v) and ".." not in v:
        return None
    return ("a plain folder name (letters, digits, '.', '_' and '-', not starting with '.' or containing '..'): "
            "results go to results/<name>; choose another folder with --out")


def _choice(allowed: Any) -> Callable[[Any], str | None]:
    allowed = list(allowed)

    def check(v: Any) -> str | None:
        return None if v in allowed else f"one of {', '.join(repr(a) for a in allowed)}"
    return check


def _positive_list(v: Any) -> str | None:
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in v):
        return None
    return "a list of positive numbers"


def _int_list(v: Any) -> str | None:
    if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return None
    return "a list of integers (samples)"


def _outer_cv(v: Any) -> str | None:
    if v in ("stimulus", "run") or (isinstance(v, int) and not isinstance(v, bool) and v >= 2):
        return None
    return "'stimulus' (hold out stimuli, the default), 'run' (leave one run out) or an integer >= 2 (folds of runs)"


def _numbers(v: Any) -> str | None:
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return None
    return "a non-empty list of numbers (seconds)"


def _windows(v: Any) -> str | None:
    if isinstance(v, list) and v and all(_number_pair(w) is None and w[0] <= w[1] for w in v):
        return None
    return "a list of [tmin, tmax] pairs in seconds (tmin <= tmax)"


def _names(v: Any) -> str | None:
    if isinstance(v, list) and all(isinstance(x, str) and x for x in v):
        return None
    return "a list of names (strings); [] for none"


def _trim(v: Any) -> str | None:
    if _int(0)(v) is None or (isinstance(v, list) and len(v) == 2 and all(_int(0)(x) is None for x in v)):
        return None
    return "an integer >= 0 (samples dropped at the start of every run) or a pair [start, end]"


def _zscore(v: Any) -> str | None:
    return None if v in (True, False, "features", "responses", "both") else \
        "true, false, 'features', 'responses' or 'both'"


def _inner_cv(v: Any) -> str | None:
    if v == "run" or (isinstance(v, int) and not isinstance(v, bool) and v >= 2):
        return None
    return "'run' or an integer >= 2"


def _like(default: Any) -> Callable[[Any], str | None]:
    """A check that accepts values of the type of ``default`` (a measure parameter's default)."""
    if isinstance(default, bool):
        return _bool
    if isinstance(default, int):
        return _int()
    if isinstance(default, float):
        def check(v: Any) -> str | None:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            return None if ok else "a number"
        return check
    if isinstance(default, str):
        return _str()

    def number_or_list(v: Any) -> str | None:  # None defaults: a number, or a list of numbers (alphas)
        flat = v if isinstance(v, list) else [v]
        if flat and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in flat):
            return None
        return "a number or a list of numbers"
    return number_or_list


def _similarity_schema(defaults: dict) -> dict[str, Callable[[Any], str | None]]:
    """Checks of ``[methods.<measure>]``: the measure's settable parameters (types of their defaults) and the
    sweep's options of every similarity method."""
    rules = {k: _like(v) for k, v in defaults.items()}
    rules.update(ceiling_splits=_int(1), spearman_brown=_bool, time_window=_number_pair, device=_str())
    return rules


def schema() -> dict[str, Any]:
    """The recipe schema: section -> key -> check (a callable returning what is expected, or None).

    The allowed values of the method options come from the library (``rsa.RDM_METHODS``,
    ``rsa.COMPARE_METHODS``, ``alignment.METHODS``, ``alignment.METHOD_DEFAULTS``,
    ``alignment.TRSA_TRANSFORMS``): a value that validates is one the sweep accepts.
    """
    from .alignment import (CONTROLS, CORRECTIONS, GROUP_TESTS, METHOD_DEFAULTS, METHODS, SIMILARITY_METHODS,
                            TRSA_TRANSFORMS)
    from .alignment._design import DESIGNS, RESAMPLE
    from .rsa import COMPARE_METHODS, RDM_METHODS

    rsa = {"rdm_method": _choice(RDM_METHODS), "compare": _choice(COMPARE_METHODS), "time_window": _number_pair}
    encoding = {"alphas": _positive_list, "delays": _int_list, "lags": _numbers, "outer_cv": _outer_cv,
                "stimulus_folds": _int(2), "gap": _int(0), "shared_stimuli": _choice(["raise", "warn"]),
                "inner_cv": _inner_cv, "ceiling_by": _str(), "pca": _int(1), "block_length": _int(1),
                "design": _choice(DESIGNS), "resample": _choice(RESAMPLE), "trim": _trim, "zscore": _zscore,
                "test_runs": _names}
    banded = {**encoding, "others": _str_list(), "n_iter": _int(1)}
    trf = {"alphas": _positive_list, "tmin": _float(-10, 10), "tmax": _float(-10, 10), "lag_windows": _windows,
           "inner_cv": _int(2), "stimulus_folds": _int(2), "test_runs": _names, "pca": _int(1),
           "resample": _choice(RESAMPLE), "trim": _trim, "zscore": _zscore, "ceiling_by": _str(),
           "block_length": _int(1), "design": _choice(["continuous"])}
    trsa = {**rsa, "low": _float(0, 1), "up": _float(0, 1), "transform": _choice(TRSA_TRANSFORMS)}
    methods = {"rsa": rsa, "trsa": trsa, "encoding": encoding, "banded": banded, "trf": trf,
               **{m: _similarity_schema(METHOD_DEFAULTS[m]) for m in SIMILARITY_METHODS}}
    for m, keys in methods.items():  # every option the sweep knows is in the recipe schema, and no other
        unknown = (set(keys) - set(METHOD_DEFAULTS[m])) - {"inner_cv"}
        assert not unknown and not set(METHOD_DEFAULTS[m]) - set(keys), (m, unknown)
    return {
        "recipe": {"name": _name, "description": _str(), "random_state": _int(0)},
        "dataset": {
            "name": _str(DATASETS), "rois": _str_list(), "subjects": _str_list(), "stimulus_key": _str(),
            "brain_rdms": _str_list(["hit", "mit"]), "resolution": _str(["1slice", "25mm"]),
            "measurement_model": _str(), "bids": _table, "fmri": _table,
            "root": _str(), "subject": _str(), "stories": _str_list(), "layout": _str(["lebel2023", "bids", "eeg"]),
        },
        "models": {
            "name": _str(), "source": _str(SOURCES, SOURCE_PREFIXES), "layers": _layers,
            "pooling": _str(["mean", "first", "cls", "last"]), "context": _int(1), "text": _str(),
            "split": _str(["layers", "models"]), "batch_size": _int(1),
        },
        "methods": {"use": _str_list(list(METHODS)), "controls": _str_list(list(CONTROLS)), **methods},
        "statistics": {"n_resamples": _int(0), "n_permutations": _int(0), "ci": _float(0.5, 0.999),
                       "n_jobs": _int(-1), "group_test": _choice(GROUP_TESTS), "correction": _choice(CORRECTIONS)},
        "outputs": {"figures": _str_list(FIGURES), "dpi": _int(50), "table": _bool, "html": _bool},
    }


REQUIRED = {"dataset": ["name"], "models": ["name", "source"], "methods": ["use"]}
TOP = ["recipe", "dataset", "models", "methods", "statistics", "outputs"]
DEFAULTS = {
    "recipe": {"random_state": 0},
    "statistics": {"n_resamples": 200, "n_permutations": 200, "ci": 0.95, "n_jobs": 1, "group_test": "sign_flip",
                   "correction": "holm"},
    "outputs": {"figures": ["layer_profile", "model_comparison", "assignment"], "dpi": 110, "table": True,
                "html": True},
}


# --------------------------------------------------------------------------- validation
def _unknown(key: str, where: str, allowed: list[str]) -> RecipeError:
    close = difflib.get_close_matches(key, allowed, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return RecipeError(f"Unknown key {key!r} in {where}. Allowed keys: {', '.join(sorted(allowed))}.{hint}")


def _check_section(values: Any, schema: dict, where: str, source: str) -> None:
    if not isinstance(values, dict):
        raise RecipeError(f"{where} must be a table ([...] section) in {source}, got {type(values).__name__}.")
    for key, val in values.items():
        if key not in schema:
            raise _unknown(key, where, list(schema))
        rule = schema[key]
        if isinstance(rule, dict):
            _check_section(val, rule, f"{where}.{key}" if where != "the top level" else f"[{key}]", source)
            continue
        wanted = rule(val)
        if wanted is not None:
            raise RecipeError(f"{where} {key} = {val!r} is invalid in {source}: it must be {wanted}.")


def _resolve(value: Any, base: Path) -> Any:
    """A relative path (or list of them) made absolute against ``base``; other values unchanged."""
    if isinstance(value, list):
        return [_resolve(v, base) for v in value]
    if isinstance(value, str) and value and "://" not in value:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())
    return value


def validate_recipe(recipe: dict, *, source: str = "the recipe", base_dir: str | Path | None = None) -> dict:
    """Check every key and value of a parsed recipe; return it with defaults filled in.

    Parameters
    ----------
    recipe : dict
        The parsed TOML.
    source : str
        Where the recipe comes from (named in the messages).
    base_dir : path, optional
        Folder against which relative paths are resolved (the recipe file's folder when
        read by :func:`load_recipe`; default the current folder).

    Returns
    -------
    dict
        A copy with defaults filled in and the paths of ``hf:`` models and of the loader
        tables (``[dataset.bids]`` root, raw_root; ``[dataset.fmri]`` bold, mask, atlas,
        events) made absolute.

    Raises
    ------
    RecipeError
        On the first problem, naming the key, the value and what is allowed.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if not isinstance(recipe, dict):
        raise RecipeError(f"A recipe is a TOML table; {source} parsed to {type(recipe).__name__}.")
    for key in recipe:
        if key not in TOP:
            raise _unknown(key, "the top level", TOP)
    for section in ("dataset", "models", "methods"):
        if section not in recipe:
            raise RecipeError(f"{source} has no [{section}] section; it is required (sections: {', '.join(TOP)}).")
    rules = schema()
    for section in ("recipe", "dataset", "methods", "statistics", "outputs"):
        if section in recipe:
            _check_section(recipe[section], rules[section], f"[{section}]", source)
    models = recipe["models"]
    if isinstance(models, dict):
        models = [models]
    if not isinstance(models, list) or not models:
        raise RecipeError(f"[[models]] in {source} must list at least one model ([[models]] tables).")
    names = []
    for k, m in enumerate(models):
        _check_section(m, rules["models"], f"[[models]] #{k + 1}", source)
        for req in REQUIRED["models"]:
            if req not in m:
                raise RecipeError(f"[[models]] #{k + 1} in {source} has no {req!r}; every model needs name and source.")
        if m["name"] in names:
            raise RecipeError(f"Two models are named {m['name']!r} in {source}; names must be unique.")
        names.append(m["name"])
    for section, keys in REQUIRED.items():
        if section == "models":
            continue
        for req in keys:
            if req not in recipe[section]:
                raise RecipeError(f"[{section}] in {source} needs {req!r}.")
    ds = recipe["dataset"]["name"]
    if ds in ("bids", "fmri") and ds not in recipe["dataset"]:
        raise RecipeError(f"[dataset] name = {ds!r} needs a [dataset.{ds}] table with the loader's arguments.")
    models = [dict(m) for m in models]
    for m in models:
        if m["source"].startswith("hf:"):
            m["source"] = "hf:" + _resolve(m["source"][3:], base)
        if m["source"].startswith("npy:"):
            m["source"] = "npy:" + _resolve(m["source"][4:], base)
            if not Path(m["source"][4:]).is_dir():
                raise RecipeError(f"Model {m['name']!r}: {m['source']!r} is not a folder (relative paths are read from "
                                  f"the recipe's folder {base}); give a folder of <layer>.npy files.")
        src = m["source"]
        if src.startswith("dataset:"):
            attr = src.split(":", 1)[1]
            allowed = _DATASET_MODELS.get(ds, [])
            if attr not in allowed:
                raise RecipeError(
                    f"Model {m['name']!r}: source {src!r} is not a model of dataset {ds!r}; allowed: "
                    f"{', '.join('dataset:' + a for a in allowed) or '(none)'}."
                )
        if src.startswith("hf:"):
            path = Path(src[3:]).expanduser()
            if not path.exists():
                raise RecipeError(
                    f"Model {m['name']!r}: {src!r} is not a local folder (relative paths are read from the recipe's "
                    f"folder {base}); brainalign never downloads at run time. Download the model first and give "
                    "its folder."
                )
        if (src == "minilm" or src.startswith("hf:")) and "text" not in m and ds in ("kriegeskorte92",):
            raise RecipeError(
                f"Model {m['name']!r} is a language model on an image dataset: give text = \"...{{category}}...\" "
                "to describe each stimulus from its table columns."
            )
    story_keys = [k for k in ("root", "subject", "stories", "layout") if k in recipe["dataset"]]
    allowed_keys = {"lebel2023": ["root", "subject", "stories"], "story_example": ["layout"]}.get(ds, [])
    stray = [k for k in story_keys if k not in allowed_keys]
    if stray:
        raise RecipeError(f"[dataset] {stray} are not options of dataset {ds!r} (story datasets take: lebel2023 "
                          "root, subject, stories; story_example layout).")
    if ds == "lebel2023" and "root" in recipe["dataset"] and "subject" not in recipe["dataset"]:
        raise RecipeError("[dataset] name = 'lebel2023' with a root needs subject = \"UTS0...\" (the ds003020 "
                          "subject whose responses to load).")
    for m in models:
        if m["source"].startswith("rate:") and ds not in STORY_DATASETS:
            raise RecipeError(f"Model {m['name']!r}: source {m['source']!r} needs timed words, i.e. a story dataset "
                              f"({', '.join(STORY_DATASETS)}), not {ds!r}.")
        if m["source"].startswith("rate:") and m["source"] not in ("rate:words", "rate:phones"):
            raise RecipeError(f"Model {m['name']!r}: source {m['source']!r} must be 'rate:words' or 'rate:phones'.")
    methods = recipe["methods"]["use"]
    if "encoding" in methods and ds == "kriegeskorte92":
        raise RecipeError("methods.use includes 'encoding' but kriegeskorte92 has RDMs only; use 'rsa' and 'trsa'.")
    from .alignment import SIMILARITY_METHODS

    measures = [m for m in methods if m in SIMILARITY_METHODS]
    if measures and ds == "kriegeskorte92":
        raise RecipeError(f"methods.use includes the similarity measure(s) {measures}, which compare response "
                          "matrices, but kriegeskorte92 has RDMs only; use 'rsa' and 'trsa'.")
    rdm_models = [m["name"] for m in models if m["source"].startswith("dataset:")]
    if measures and rdm_models:
        raise RecipeError(f"methods.use includes the similarity measure(s) {measures}, which need feature arrays, but "
                          f"the model(s) {rdm_models} are RDMs (source 'dataset:...'); use 'rsa' / 'trsa' for them.")
    stats = recipe.get("statistics", {})
    if stats.get("group_test") == "bootstrap":
        core = [m for m in methods if m not in SIMILARITY_METHODS]
        if core:
            raise RecipeError(f"[statistics] group_test = 'bootstrap' needs per-subject stimulus replicates drawn on "
                              f"the same stimuli, which the sweep keeps for the similarity measures only; {core} have "
                              "none. Use group_test = 'sign_flip' or 't'.")
    trsa = recipe["methods"].get("trsa", {})
    if trsa.get("low", 0) > trsa.get("up", 1):
        raise RecipeError(f"[methods.trsa] low = {trsa['low']} must not exceed up = {trsa['up']}.")
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in recipe.items()}
    out["models"] = models
    out["dataset"] = dict(out["dataset"])
    for key in PATH_KEYS[""]:
        if key in out["dataset"]:
            out["dataset"][key] = _resolve(out["dataset"][key], base)
    for loader, keys in PATH_KEYS.items():
        if loader and isinstance(out["dataset"].get(loader), dict):
            table = dict(out["dataset"][loader])
            for key in keys:
                if key in table:
                    table[key] = _resolve(table[key], base)
            out["dataset"][loader] = table
    for section, defaults in DEFAULTS.items():
        out[section] = {**defaults, **out.get(section, {})}
    if "name" not in out["recipe"]:
        stem = Path(str(source)).stem if str(source).endswith(".toml") else "recipe"
        if _name(stem) is not None:
            raise RecipeError(f"{source} has no [recipe] name and its file name {stem!r} is not a plain folder name; "
                              "give [recipe] name = \"...\" (letters, digits, '.', '_', '-').")
        out["recipe"]["name"] = stem
    return out


_DATASET_MODELS = {"kriegeskorte92": ["alexnet_rdms", "model_rdms", "behavior_rdms"], "haxby2001": []}


def load_recipe(path: str | Path) -> dict:
    """Read a TOML recipe and validate it (nothing is computed).

    Relative paths in the recipe are resolved against the recipe file's folder.

    Parameters
    ----------
    path : path
        A ``.toml`` recipe (format: ``docs/recipes.md``).

    Returns
    -------
    dict
        The validated recipe with defaults filled in (see :func:`validate_recipe`).

    Examples
    --------
    >>> recipe = load_recipe("encoding/kriegeskorte92_rsa.toml")  # doctest: +SKIP
    >>> recipe["methods"]["use"]  # doctest: +SKIP
    ['rsa', 'trsa']
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(path)
    if not path.is_file():
        near = sorted(p.name for p in path.parent.glob("*.toml")) if path.parent.is_dir() else []
        raise FileNotFoundError(f"No recipe file {str(path)!r}." + (f" Recipes in that folder: {near}." if near else ""))
    try:
        parsed = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{path} is not valid TOML: {err}") from None
    return validate_recipe(parsed, source=str(path), base_dir=path.resolve().parent)
