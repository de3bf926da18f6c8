"""Run every benchmark in a fresh process and write ONE markdown table (``results/bench.md``).

Each ``bench_*.py`` beside this file (except ``bench_story.py``, which takes hours) runs as
``python bench_X.py [--quick] --json TMP``, one after the other; its own printing goes to the
console and to ``results/bench_logs/<name>.log``. The rows it writes (the contract of
``_harness.py``: workload, peer, peer_s, brainalign_s, ratio, spread, runs, equal, target, met)
are gathered into one table, headed by the machine it ran on (CPU model, cores, load average
before and after, Python / numpy / torch and peer versions, ``OMP_NUM_THREADS``) and the date;
``results/bench.json`` holds the same rows and machine record.

The run exits 1 when a script found unequal numbers, failed, timed out or wrote no rows (the
table is written all the same, naming what went wrong); a missed target is reported, not an
error.

Usage::

    python tests/benchmarks/run_all.py            # full run (long: ridge at 50,000 voxels...)
    python tests/benchmarks/run_all.py --quick    # smoke run of every script, a few minutes
    python tests/benchmarks/run_all.py --quick --only stats trf --out /tmp/bench.md

Set ``OMP_NUM_THREADS`` yourself (it is recorded, not changed). ``make bench`` and
``make bench-quick`` call this script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXCLUDED = {"bench_story.py": "hours at full size; run it on its own (make bench-story)"}
REQUIRED = ("workload", "peer", "peer_s", "brainalign_s", "ratio", "spread", "runs", "equal", "target", "met")


# ----------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # not on every platform
        return "n/a"


def _version(module: str) -> str:
    out = subprocess.run([sys.executable, "-c", f"import {module}; print({module}.__version__)"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "not installed"


def git_commit() -> str:
    def git(*a):
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return head + (" + uncommitted changes" if dirty else "")


def machine() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable, "python": platform.python_version(),
            "numpy": _version("numpy"), "torch": _version("torch"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"), "commit": git_commit()}


# ----------------------------------------------------------------------------- running
def discover(bench_dir: Path, only: list[str] | None) -> list[Path]:
    scripts = [p for p in sorted(bench_dir.glob("bench_*.py")) if p.name not in EXCLUDED]
    if only:
        chosen = [p for p in scripts if any(o in p.stem for o in only)]
        if not chosen:
            raise SystemExit(f"--only {' '.join(only)} matches none of the benchmarks in {bench_dir}: "
                             f"{', '.join(p.stem for p in scripts)}.")
        scripts = chosen
    return scripts


def run_script(script: Path, quick: bool, json_path: Path, log_path: Path, timeout: float | None) -> dict:
    """Run one script in a fresh process, echo and log its output; return its record."""
    cmd = [sys.executable, str(script), *(["--quick"] if quick else []), "--json", str(json_path)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if (ROOT / "src" / "brainalign").is_dir():  # benchmark the code of this checkout
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    print(f"\n=== {script.name} ({' '.join(cmd[1:])})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=str(ROOT))
    tail: list[str] = []

    def pump():
        with open(log_path, "w") as log:
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                log.write(line)
                tail.append(line.rstrip())
                del tail[:-15]

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc, timed_out = proc.wait(), True
    reader.join(timeout=10)
    record = {"script": script.name, "returncode": rc, "seconds": time.perf_counter() - t0, "rows": [],
              "meta": {}, "problem": None}
    if timed_out:
        record["problem"] = f"timed out after {timeout:g} s"
    elif not json_path.exists():
        record["problem"] = (f"exited with status {rc} and wrote no rows" if rc else
                             "wrote no rows (does it accept --json PATH?)")
    else:
        try:
            data = json.loads(json_path.read_text())
            record["rows"], record["meta"] = list(data["rows"]), dict(data.get("meta", {}))
        except (ValueError, KeyError, TypeError) as err:
            record["problem"] = f"unreadable rows ({type(err).__name__}: {err})"
        valid = []
        for r in record["rows"]:
            missing = [k for k in REQUIRED if not isinstance(r, dict) or k not in r]
            if missing:  # left out of the table, named as the script's problem
                name = r.get("workload", "?") if isinstance(r, dict) else r
                record["problem"] = record["problem"] or f"row {name!r} lacks {', '.join(missing)}"
            else:
                valid.append(r)
        record["rows"] = valid
        unequal = any(r.get("equal") is False for r in record["rows"])
        if record["problem"] is None and rc != 0 and not unequal:  # unequal rows explain a non-zero status
            record["problem"] = f"exited with status {rc}"
        if record["problem"] is None and not record["rows"]:
            record["problem"] = "wrote an empty list of rows"
    if record["problem"]:
        record["tail"] = tail
    return record


# ----------------------------------------------------------------------------- table
def _esc(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def fmt_time(s) -> str:
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s" if s < 100 else f"{s:.0f} s"


def fmt_ratio(x: float) -> str:
    return f"{x:.3g}×" if x < 100 else f"{x:.0f}×"


def fmt_equal(r: dict) -> str:
    """"yes (max |diff| 3.1e-13 ≤ 1e-06)", "**NO** (max |diff| 0.02, tolerance 1e-06)" or "n/a"."""
    word = "n/a" if r["equal"] is None else ("yes" if r["equal"] else "**NO**")
    if r.get("diff") is None:
        return word
    kind, tol = r.get("diff_kind") or "max |diff|", r.get("tolerance")
    if tol is None:
        return f"{word} ({kind} {r['diff']:.1e})"
    return f"{word} ({kind} {r['diff']:.1e} {'≤' if r['equal'] else '>'} {tol:g})"


def render(records: list[dict], info: dict, args) -> str:
    rows = [r for rec in records for r in rec["rows"]]
    peers: dict[str, str] = {}
    for rec in records:
        for k, v in rec["meta"].get("versions", {}).items():
            if k not in ("numpy", "torch"):
                peers[k] = v
    runs = sorted({r["runs"] for r in rows})
    out = ["# brainalign benchmarks", ""]
    if args.quick:
        out += ["**Quick smoke run** (`run_all.py --quick`: small sizes, 3 runs per ratio). It checks that every "
                "benchmark runs and agrees with its peer; its timings are not the benchmark numbers.", ""]
    out += [f"- date: {info['date']} (UTC); commit {info['commit']}",
            f"- machine: {info['cpu']}; {info['cores']} cores ({info['usable_cores']} usable); "
            f"`OMP_NUM_THREADS={info['OMP_NUM_THREADS']}`",
            f"- load average (1 / 5 / 15 min): {info['load_before']} before, {info['load_after']} after",
            f"- Python {info['python']}, numpy {info['numpy']}, torch {info['torch']}"
            + (f"; also: {', '.join(f'{k} {v}' for k, v in sorted(peers.items()))}" if peers else ""),
            f"- command: `{info['command']}` ({info['seconds'] / 60:.1f} min)", "",
            "Ratio = peer time / brainalign time (above 1: brainalign is faster): the median of the per-run ratios "
            "of alternating runs (peer, brainalign, peer, ... after a warm-up of each), [min–max of those ratios]; "
            f"runs per ratio: {', '.join(map(str, runs)) or '—'}. Times are medians. A target is met when the "
            "median ratio reaches it (a target below 1× is an allowed overhead). \"Numbers equal?\" is checked in "
            "the same run.", "",
            "| workload | peer | peer time | brainalign time | ratio [spread] | numbers equal? | target | met? |",
            "|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for r in rows:
        workload = r["workload"]
        if r.get("note"):
            if r["note"] not in notes:
                notes.append(r["note"])
            workload += f" [{notes.index(r['note']) + 1}]"
        lo, hi = r["spread"]
        target = "—" if r["target"] is None else f"≥ {r['target']:.3g}×"
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        out.append("| " + " | ".join(_esc(c) for c in (
            workload, r["peer"], fmt_time(r["peer_s"]), fmt_time(r["brainalign_s"]),
            f"{fmt_ratio(r['ratio'])} [{lo:.3g}–{hi:.3g}]", fmt_equal(r), target, met)) + " |")
    if notes:
        out += [""] + [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    n_target = [r for r in rows if r["met"] is not None]
    unequal = [r for r in rows if r["equal"] is False]
    failed = [rec for rec in records if rec["problem"]]
    out += ["", f"**{len(rows)} workloads; {sum(r['met'] for r in n_target)} of {len(n_target)} targets met; "
                f"{len(unequal)} with unequal numbers; {len(failed)} of {len(records)} scripts failed.**", "",
            "Scripts: " + "; ".join(f"`{rec['script']}` {'FAILED: ' + rec['problem'] if rec['problem'] else 'ok'} "
                                    f"({rec['seconds']:.0f} s)" for rec in records) + ". "
            + "Not run: " + "; ".join(f"`{k}` ({v})" for k, v in EXCLUDED.items()) + "."]
    for rec in failed:
        out += ["", f"`{rec['script']}` ({rec['problem']}), last lines of its output:", "", "```",
                *rec.get("tail", []), "```"]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script (a smoke run)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="run only the scripts whose name contains one of these (e.g. stats trf)")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench.md"), help="the markdown table")
    parser.add_argument("--bench-dir", default=str(HERE), help=argparse.SUPPRESS)  # for the harness's own test
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per script (default: none)")
    args = parser.parse_args(argv)
    scripts = discover(Path(args.bench_dir), args.only)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = out.parent / "bench_logs"
    logs.mkdir(exist_ok=True)
    info = machine()
    info.update(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"), load_before=load_average(),
                command="python tests/benchmarks/run_all.py" + (" " + " ".join(argv if argv is not None else
                                                                              sys.argv[1:])).rstrip())
    print(f"{len(scripts)} benchmark scripts: {', '.join(p.name for p in scripts)}; machine: {info['cpu']}, "
          f"{info['cores']} cores, load {info['load_before']}, OMP_NUM_THREADS={info['OMP_NUM_THREADS']}")
    t0 = time.perf_counter()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for script in scripts:
            records.append(run_script(script, args.quick, Path(tmp) / f"{script.stem}.json",
                                      logs / f"{script.stem}.log", args.timeout))
    info.update(load_after=load_average(), seconds=time.perf_counter() - t0)
    text = render(records, info, args)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"machine": info, "quick": args.quick, "scripts": records},
                                                   indent=1))
    print("\n" + text)
    print(f"table written to {out}")
    bad = [rec["script"] for rec in records if rec["problem"]]
    unequal = [r["workload"] for rec in records for r in rec["rows"] if r["equal"] is False]
    if unequal:
        print(f"unequal numbers: {unequal}", file=sys.stderr)
    if bad:
        print(f"failed scripts: {bad}", file=sys.stderr)
    return 1 if (bad or unequal) else 0


if __name__ == "__main__":
    sys.exit(main())
