"""The contract every ``bench_*.py`` script shares, so that ``run_all.py`` can build one table.

A script times a peer and brainalign **alternately** (peer, brainalign, peer, brainalign, ...,
after one untimed warm-up of each) with :func:`alternate`, checks in the same run that the two
give the same numbers, and turns each workload into a row with :func:`make_row`::

    {"workload": str, "peer": str, "peer_s": float, "brainalign_s": float,
     "ratio": float,            # median over runs of peer_time / brainalign_time (paired runs)
     "spread": [min, max],      # min and max of those per-run ratios
     "runs": int,
     "equal": bool | None,      # the numbers agree within `tolerance` (None: not comparable)
     "diff": float | None, "tolerance": float | None, "diff_kind": str,
     "target": float | None,    # the ratio the issue asks for (None: no target)
     "met": bool | None,        # median ratio >= target
     "note": str}

``--json PATH`` (see :func:`add_arguments`) writes ``{"script", "rows", "meta"}`` with
:func:`write_json` (``meta["versions"]``: the peer libraries' versions, from :func:`versions`,
which ``run_all.py`` prints under the table). The ratio is always *peer time / brainalign time*: above 1 brainalign is
faster. A target below 1 is an allowed overhead (``0.91`` = at most 10% slower than the peer).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import statistics
import time
from typing import Any, Callable

ROW_KEYS = ("workload", "peer", "peer_s", "brainalign_s", "ratio", "spread", "runs", "equal", "target", "met")


def add_arguments(parser, *, quick_help: str = "small sizes, fewer runs: a smoke run") -> None:
    """Add the shared ``--quick`` and ``--json PATH`` options to an ``argparse`` parser."""
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the result rows (the run_all.py contract) to this JSON file")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def alternate(fns: dict[str, Callable[[], Any]], repeats: int, *, warmup: bool = True):
    """Call every function ``repeats`` times in turn (in the order of ``fns``: peer first).

    Returns ``(times, outputs)``: per name the list of seconds, and the first timed output.
    One untimed call of each comes first (imports, thread pools, caches) unless ``warmup=False``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    if warmup:
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    outs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, out = timed(fn)
            times[name].append(t)
            outs.setdefault(name, out)
    return times, outs


def _finite(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def make_row(workload: str, peer: str, peer_times, ours_times, *, equal: bool | None, diff: float | None = None,
             tolerance: float | None = None, diff_kind: str = "max |diff|", target: float | None = None,
             note: str = "") -> dict:
    """One table row from paired run times (``peer_times[i]`` and ``ours_times[i]`` from the same round).

    ``equal=None`` says the two results are not the same quantity (``note`` says why); a
    number beside it (``diff``) is reported, the judgement is ``equal``.
    """
    peer_times, ours_times = [float(t) for t in peer_times], [float(t) for t in ours_times]
    if not peer_times or len(peer_times) != len(ours_times):
        raise ValueError(f"{workload}: need paired runs, got {len(peer_times)} peer and {len(ours_times)} "
                         "brainalign times.")
    ratios = [p / max(o, 1e-12) for p, o in zip(peer_times, ours_times)]
    ratio = statistics.median(ratios)
    return {
        "workload": workload, "peer": peer,
        "peer_s": statistics.median(peer_times), "brainalign_s": statistics.median(ours_times),
        "ratio": ratio, "spread": [min(ratios), max(ratios)], "runs": len(ratios),
        "equal": None if equal is None else bool(equal), "diff": _finite(diff), "tolerance": tolerance,
        "diff_kind": diff_kind, "target": target, "met": None if target is None else bool(ratio >= target),
        "note": note,
    }


def versions(*modules: str) -> dict[str, str]:
    """``{name: version}`` of the given importable modules (``"missing"`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            out[name] = "missing"
            continue
        found = getattr(mod, "__version__", None)
        if not found:  # e.g. rsatoolbox, ckatorch: ask the installed distribution
            try:
                found = version(name.replace("_", "-"))
            except PackageNotFoundError:
                found = "?"
        out[name] = str(found)
    return out


def write_json(path: str | None, script: str, rows: list[dict], **meta: Any) -> None:
    """Write ``{"script", "rows", "meta"}`` to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    for r in rows:
        missing = [k for k in ROW_KEYS if k not in r]
        if missing:
            raise ValueError(f"{script}: row {r.get('workload')!r} lacks {missing}; use make_row().")
    meta.setdefault("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "unset"))
    with open(path, "w") as fh:
        json.dump({"script": os.path.basename(script), "rows": rows, "meta": meta}, fh, indent=1)


def fmt_row(r: dict) -> str:
    """One line for a script's own console table: medians, ratio [spread], equality, target."""
    if r["equal"] is None:
        eq = "n/a"
    else:
        eq = ("equal" if r["equal"] else "MISMATCH") + (f" ({r['diff_kind']} {r['diff']:.1e})" if r["diff"] is not
                                                         None else "")
    tgt = "" if r["target"] is None else f" target >={r['target']:g}x {'met' if r['met'] else 'MISSED'}"
    return (f"{r['workload']:<60s} {r['peer']:<24s} {r['peer_s']:8.3f} s  brainalign {r['brainalign_s']:8.3f} s  "
            f"x{r['ratio']:6.2f} [{r['spread'][0]:.2f}-{r['spread'][1]:.2f}] {eq}{tgt}")
