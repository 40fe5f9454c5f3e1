"""Evaluate N synthetic 50,000-row prediction files (+ the 4 reference ones) and print JSON.

    .venv/bin/python bench/evaluation.py [--models 200] [--toolkit-models 24] [--chunk 50] [--out bench/results/evaluation.json]

In one run:
- ours, end to end per model: parse the CSV (pyarrow), align to the labels, every metric that an
  Evaluation stores (3 correctness kinds, intervals, tests, meta-label x factor, prevalence shift,
  calibration), and store (the compact .npz of predictions + the metrics JSON on disk), in chunks of
  `--chunk` models (the matrix products run on a chunk at a time, so memory is flat in N);
- ours with only the toolkit's outputs (parse + align + one kind's factor table), for a like-for-like ratio;
- the baseline: the toolkit's `imagenet_x.get_factor_accuracies` (top factor, class) on a
  directory holding `--toolkit-models` of the same files (it only computes the factor table, fewer
  numbers than ours);
- memory: the process's max RSS after each chunk (flat = it stops growing after the first chunk).
The 2,200-model figure is extrapolated linearly from the measured per-model time plus the
one-off label load (each chunk costs the same, as the per-chunk times show).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluation import labels as L  # noqa: E402
from evaluation import metrics as M  # noqa: E402
from evaluation import parsing as P  # noqa: E402
from evaluation import report as R  # noqa: E402
from evaluation import storage as S  # noqa: E402

REF = ROOT / "evaluation" / "reference" / "model_predictions"


def synthetic_files(out: Path, n: int, seed: int = 0) -> list[Path]:
    """n files derived from ResNet-50's: each image kept right/wrong with a model-specific accuracy."""
    rng = np.random.default_rng(seed)
    base = gzip.decompress((REF / "ResNet50.csv.gz").read_bytes()).decode().splitlines()[1:]
    names = np.array([r.split(",")[0] for r in base])
    truth = L.toolkit_labels("top")
    true_cls = np.full(len(names), 0)
    rows = truth.index_of(names)
    true_cls[rows >= 0] = truth.classes[rows[rows >= 0]]
    paths = []
    for i in range(n):
        acc = rng.uniform(0.55, 0.9)
        right = rng.random(len(names)) < acc
        pred = np.where(right, true_cls, rng.integers(0, 1000, len(names)))
        prob = np.round(np.clip(rng.beta(5, 2, len(names)), 0, 1), 10)
        p = out / f"synthetic_{i:04d}.csv"
        with open(p, "w") as fh:
            fh.write("file_name,predicted_class,predicted_probability\n")
            fh.writelines(f"{a},{b},{c}\n" for a, b, c in zip(names, pred, prob, strict=True))
        paths.append(p)
    for f in sorted(REF.glob("*.csv.gz")):
        p = out / f.name.removesuffix(".gz")
        p.write_bytes(gzip.decompress(f.read_bytes()))
        paths.append(p)
    return paths


def ours(paths: list[Path], store: Path, chunk: int) -> dict:
    t0 = time.perf_counter()
    all_labels = L.toolkit_labels.__wrapped__("top")
    labels = all_labels.subset(~all_labels.is_prototype)
    fp = S.label_fingerprint(all_labels)
    t_labels = time.perf_counter() - t0
    parse_s = compute_s = store_s = 0.0
    chunk_times, chunk_peaks, rss = [], [], {}
    for c0 in range(0, len(paths), chunk):
        tc = time.perf_counter()
        part = paths[c0 : c0 + chunk]
        t = time.perf_counter()
        preds = [P.parse_csv(p.read_bytes(), n_classes=1000) for p in part]
        parse_s += time.perf_counter() - t
        t = time.perf_counter()
        aligned = [M.align(labels, p) for p in preds]
        reports = R.evaluate_batch(labels, aligned, toolkit=True)
        compute_s += time.perf_counter() - t
        t = time.perf_counter()
        for p, pr in zip(part, preds, strict=True):
            a_all = M.align(all_labels, pr)
            S.write_predictions(store / f"{p.stem}.npz", a_all, fp)
        for p, rep in zip(part, reports, strict=True):
            (store / f"{p.stem}.json").write_text(json.dumps(rep))
        store_s += time.perf_counter() - t
        chunk_times.append(round(time.perf_counter() - tc, 3))
        chunk_peaks.append(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
        done = c0 + len(part)
        if done >= len(paths) // 2 and "half" not in rss:
            rss["half"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss["end"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = parse_s + compute_s + store_s
    n = len(paths)
    return {
        "models": n,
        "labels_load_s": round(t_labels, 3),
        "parse_s": round(parse_s, 3),
        "compute_s": round(compute_s, 3),
        "store_s": round(store_s, 3),
        "total_s": round(total + t_labels, 3),
        "per_model_ms": round(1000 * total / n, 2),
        "per_model_parse_ms": round(1000 * parse_s / n, 2),
        "per_model_compute_ms": round(1000 * compute_s / n, 2),
        "per_model_store_ms": round(1000 * store_s / n, 2),
        "chunk_s": chunk_times,
        "max_rss_mib_after_each_chunk": chunk_peaks,
        "max_rss_mib_after_half": round(rss["half"], 1),
        "max_rss_mib_at_end": round(rss["end"], 1),
    }


def ours_same_outputs(paths: list[Path], chunk: int) -> dict:
    """Only what get_factor_accuracies returns (one kind's factor table), parse included."""
    all_labels = L.toolkit_labels.__wrapped__("top")
    labels = all_labels.subset(~all_labels.is_prototype)
    t0 = time.perf_counter()
    for c0 in range(0, len(paths), chunk):
        preds = [P.parse_csv(p.read_bytes(), n_classes=1000) for p in paths[c0 : c0 + chunk]]
        pred, _, _ = M.stack([M.align(labels, p) for p in preds])
        c, v = M.correctness(labels, pred, "class", toolkit=True)
        M.toolkit_table(M.factor_counts(c, v, labels.factors))
    wall = time.perf_counter() - t0
    return {"models": len(paths), "total_s": round(wall, 3), "per_model_ms": round(1000 * wall / len(paths), 2)}


def toolkit(paths: list[Path], k: int) -> dict:
    import imagenet_x

    d = Path(tempfile.mkdtemp(prefix="tk-"))
    try:
        sample = paths[-k:]  # the 4 reference files and the last synthetic ones
        for p in sample:
            os.symlink(p, d / p.name)
        t = time.perf_counter()
        table = imagenet_x.get_factor_accuracies(str(d), which_factor="top", error_type="class")
        wall = time.perf_counter() - t
        return {"models": len(table), "total_s": round(wall, 3), "per_model_ms": round(1000 * wall / len(table), 2)}
    finally:
        shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--toolkit-models", type=int, default=24)
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    try:
        t = time.perf_counter()
        paths = synthetic_files(work, a.models)
        gen = time.perf_counter() - t
        store = work / "store"
        store.mkdir()
        o = ours(paths, store, a.chunk)
        same = ours_same_outputs(paths, a.chunk)
        tk = toolkit(paths, min(a.toolkit_models, len(paths)))
    finally:
        shutil.rmtree(work)
    per_model_s = o["per_model_ms"] / 1000
    res = {
        "benchmark": "evaluation",
        "unit": "seconds / milliseconds per model, 50,000-row prediction files, top factor",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "files": {"synthetic": a.models, "reference": 4, "generation_s_excluded": round(gen, 2)},
        "ours": o,
        "toolkit_get_factor_accuracies": tk,
        "ours_same_outputs_as_toolkit": same,
        "speedup_per_model": round(tk["per_model_ms"] / o["per_model_ms"], 1),
        "speedup_per_model_same_outputs": round(tk["per_model_ms"] / same["per_model_ms"], 1),
        "extrapolated_2200_models_same_outputs_s": round(2200 * same["per_model_ms"] / 1000, 1),
        "extrapolated_2200_models_s": round(o["labels_load_s"] + 2200 * per_model_s, 1),
        "extrapolation": "labels load once + 2,200 x measured per-model time (chunks cost the same; see chunk_s)",
        "goals": {
            "speedup_per_model": ">= 20",
            "2200_models_s": "< 90",
            "memory": "flat in N (max RSS after each chunk)",
        },
    }
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
