#!/usr/bin/env python
"""Benchmark of the prototype engine: prints one JSON document (figures, units, machine, baselines).

In one run, on N real JPEG files of ImageNet-like sizes (about 500x375, varied):
  * end_to_end:     images/s of prototypes.engine.score (decode + preprocess + model + top-k),
                    the path manage.py compute_prototypes and the Celery shard task use;
  * model_only:     images/s of the same model, batch size and dtype on ready tensors;
  * naive_baseline: PIL per image, the weights' transform, batch 1, fp32;
  * peak RSS of the scoring process (and of its largest decode worker) at two N values, each
    in a fresh subprocess, to show memory is flat in N.
Goals (issue 3): end_to_end >= 0.85 x model_only and >= 3 x naive_baseline on CPU, RSS flat in N;
on one H100/H200, end_to_end >= 8,000 images/s for ResNet-50 with real JPEG decoding.

Needs only torch, torchvision and Pillow (and numpy, which torchvision brings): it imports the
engine module, never Django, so it runs on a bare GPU box:
    python bench/prototypes.py --standalone --n 50000 --device cuda
Random weights (no download); compute cost is the same as with trained weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from prototypes import engine  # noqa: E402


# --- Data --------------------------------------------------------------------------------------
def _write_one(args: tuple[str, int]) -> None:
    path, seed = args
    rng = np.random.default_rng(seed)
    # ImageNet-like geometry: most photos are 500 px on the long side, aspect 4:3 or 3:4, some others.
    long = int(rng.choice([500, 500, 500, 400, 640]))
    short = int(long * rng.choice([0.75, 0.75, 0.667, 0.8, 1.0]))
    w, h = (long, short) if rng.random() < 0.75 else (short, long)
    # Smooth colour blobs plus grain: decodes like a photo (entropy close to ImageNet's ~110 kB files).
    base = rng.integers(0, 255, (max(2, h // 40), max(2, w // 40), 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    img = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path, quality=90)


def make_dataset(data_dir: Path, n: int) -> list[engine.Item]:
    data_dir.mkdir(parents=True, exist_ok=True)
    todo = [(str(data_dir / f"img_{i:06d}.JPEG"), i) for i in range(n) if not (data_dir / f"img_{i:06d}.JPEG").exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=engine.cpu_count()) as pool:
            list(pool.map(_write_one, todo, chunksize=64))
    return [engine.Item(f"img_{i:06d}.JPEG", str(data_dir / f"img_{i:06d}.JPEG"), i % 1000) for i in range(n)]


# --- Measurements ------------------------------------------------------------------------------
def load(model: str, image_size: int | None = None) -> engine.LoadedModel:
    return engine.load_model(engine.ModelSpec(name=model, weights=None, seed=0, image_size=image_size))


def model_only(loaded: engine.LoadedModel, opts: engine.ScoreOptions, n: int) -> dict:
    """Same model, batch size, dtype and memory format on ready (already normalised) tensors."""
    r = engine.resolve(opts)
    if r.device.type == "cpu":
        torch.set_num_threads(r.threads)
    model = loaded.model.to(r.device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    c = loaded.pre.crop_size
    x = torch.randn(r.batch_size, 3, c, c, device=r.device).contiguous(memory_format=torch.channels_last)
    autocast = r.dtype != torch.float32
    batches = max(1, n // r.batch_size)

    def step() -> None:
        if autocast:
            with torch.autocast(r.device.type, dtype=r.dtype):
                logits = model(x)
        else:
            logits = model(x)
        torch.softmax(logits.float(), dim=1).max(dim=1)[0].tolist()  # the same sync point the engine has

    with torch.inference_mode():
        step()  # warm-up: oneDNN/cuDNN primitive creation
        if r.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(batches):
            step()
        if r.device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    return {
        "images_per_s": round(batches * r.batch_size / wall, 2),
        "images": batches * r.batch_size,
        "wall_s": round(wall, 2),
        "batch_size": r.batch_size,
        "dtype": str(r.dtype).removeprefix("torch."),
    }


def naive(loaded_name: str, items: list[engine.Item], n: int, device: str) -> dict:
    """What one would write first: PIL per image, the weights' own transform, batch 1, fp32."""
    import torchvision

    weights = torchvision.models.get_model_weights(loaded_name).DEFAULT
    transform = weights.transforms()
    model = torchvision.models.get_model(loaded_name, weights=None).eval().to(device)
    with torch.no_grad():
        model(transform(Image.open(items[0].path).convert("RGB"))[None].to(device))  # warm-up
        t0 = time.perf_counter()
        for it in items[:n]:
            x = transform(Image.open(it.path).convert("RGB"))[None].to(device)
            prob = torch.softmax(model(x), dim=1)
            prob.max().item()
        wall = time.perf_counter() - t0
    return {
        "images_per_s": round(n / wall, 2),
        "images": n,
        "wall_s": round(wall, 2),
        "batch_size": 1,
        "dtype": "float32",
    }


def end_to_end(loaded: engine.LoadedModel, items: list[engine.Item], opts: engine.ScoreOptions) -> dict:
    # Warm-up on one batch so one-time primitive creation is not charged to the figure (the
    # model-only figure gets the same warm-up); DataLoader worker start-up stays in.
    r = engine.resolve(opts)
    engine.score(items[: r.batch_size], loaded, opts)
    result = engine.score(items, loaded, opts)
    return {
        "images_per_s": round(result.images_per_s, 2),
        "images": result.scored,
        "skipped": len(result.skipped),
        "wall_s": round(result.wall_s, 2),
        **result.resolved,
    }


def rss_child(args) -> None:
    """Run in a fresh process: score N images, print the figure and the peak RSS."""
    items = make_dataset(Path(args.data_dir), args.n)
    loaded = load(args.model, args.image_size)
    opts = _opts(args)
    out = end_to_end(loaded, items, opts)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["peak_rss_mb_largest_worker"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    if torch.cuda.is_available() and opts.device != "cpu":
        out["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(out))


def _opts(args, **over) -> engine.ScoreOptions:
    kw = dict(
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.workers,
        dtype=args.dtype,
        decode=args.decode,
        threads=args.threads,
        channels_last=not args.no_channels_last,
    )
    kw.update(over)
    return engine.ScoreOptions(**kw)


def _child(args, n: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--rss-child",
        "--n",
        str(n),
        "--data-dir",
        args.data_dir,
        "--model",
        args.model,
        "--device",
        args.device,
        "--dtype",
        args.dtype,
        "--decode",
        args.decode,
    ]
    for flag, value in (
        ("--batch-size", args.batch_size),
        ("--workers", args.workers),
        ("--threads", args.threads),
        ("--image-size", args.image_size),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    if args.no_channels_last:
        cmd.append("--no-channels-last")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores_usable": engine.cpu_count(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        **engine.library_versions(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def sweep(args, loaded: engine.LoadedModel, items: list[engine.Item]) -> list[dict]:
    """End-to-end under several settings, to choose the defaults from measurements."""
    cuda = engine.resolve(_opts(args)).device.type == "cuda"
    if cuda:
        configs = [
            dict(decode="cpu"),
            dict(decode="device"),
            dict(decode="device", batch_size=512),
            dict(decode="device", dtype="fp16"),
            dict(decode="device", channels_last=False),
            dict(decode="device", dtype="fp32"),
        ]
    else:
        configs = [
            dict(num_workers=0),
            dict(num_workers=1),
            dict(num_workers=2),
            dict(num_workers=1, threads=1),
            dict(num_workers=1, channels_last=False),
            dict(num_workers=1, batch_size=64),
            dict(num_workers=1, dtype="bf16"),
        ]
    rows = []
    for cfg in configs:
        opts = _opts(args, **cfg)
        e2e = end_to_end(loaded, items, opts)
        mo = model_only(loaded, opts, len(items))
        rows.append(
            {
                "config": {k: v for k, v in cfg.items()},
                "end_to_end_images_per_s": e2e["images_per_s"],
                "model_only_images_per_s": mo["images_per_s"],
                "ratio": round(e2e["images_per_s"] / mo["images_per_s"], 3),
                "resolved": e2e,
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--standalone", action="store_true", help="Assert that Django is not imported (bare GPU box).")
    p.add_argument("--n", type=int, default=256, help="Images for the end-to-end and model-only figures.")
    p.add_argument("--rss-n", type=int, nargs=2, default=None, help="Two N for peak RSS (default: n and 3n).")
    p.add_argument("--naive-n", type=int, default=None, help="Images for the naive baseline (default min(n, 48)).")
    p.add_argument("--model", default="resnet50")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--decode", default="auto")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--sweep", type=int, default=0, metavar="N", help="Also sweep settings on N images.")
    p.add_argument("--skip-rss", action="store_true")
    p.add_argument("--sweep-only", action="store_true", help="Only the settings sweep (to choose defaults).")
    p.add_argument("--data-dir", default=None, help="Where the JPEGs go (kept and reused).")
    p.add_argument("--out", default=None, help="Also write the JSON here.")
    p.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.data_dir = args.data_dir or str(Path(tempfile.gettempdir()) / "prototypes-bench-jpegs")
    if args.rss_child:
        return rss_child(args)
    if args.standalone:
        assert "django" not in sys.modules, "the engine must not import Django"

    rss_n = args.rss_n or [args.n, 3 * args.n]
    t_gen = time.perf_counter()
    items_all = make_dataset(Path(args.data_dir), max([args.n, args.sweep, *rss_n]))
    gen_s = time.perf_counter() - t_gen
    items = items_all[: args.n]
    sizes = [os.path.getsize(it.path) for it in items[:200]]
    loaded = load(args.model, args.image_size)
    opts = _opts(args)
    r = engine.resolve(opts)
    report: dict = {
        "benchmark": "prototype engine (issue 3)",
        "machine": machine(),
        "model": f"{args.model} (random weights, same compute as IMAGENET1K_V1)",
        "data": {
            "images": args.n,
            "mean_file_kb": round(sum(sizes) / len(sizes) / 1024, 1),
            "sizes": "500x375-like, varied (500/400/640 long side, 4:3, 3:2, 5:4, 1:1)",
            "generated_in_s": round(gen_s, 1),
            "dir": args.data_dir,
        },
        "settings": {
            "device": str(r.device),
            "batch_size": r.batch_size,
            "dtype": str(r.dtype).removeprefix("torch."),
            "num_workers": r.num_workers,
            "threads": r.threads,
            "decode": r.decode,
            "channels_last": opts.channels_last,
        },
        "unit": "images/s",
    }
    if args.sweep_only:
        report["sweep"] = {"images": args.sweep, "rows": sweep(args, loaded, items_all[: args.sweep])}
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n")
        return
    # Model-only before and after the end-to-end run, averaged: the machine is shared, so
    # bracketing the end-to-end figure keeps the ratio honest under changing load.
    mo1 = model_only(loaded, opts, args.n)
    e2e = _child(args, args.n) if not args.skip_rss else end_to_end(loaded, items, opts)
    mo2 = model_only(loaded, opts, args.n)
    mo = dict(
        mo1,
        images_per_s=round((mo1["images_per_s"] + mo2["images_per_s"]) / 2, 2),
        runs=[mo1["images_per_s"], mo2["images_per_s"]],
    )
    naive_n = args.naive_n or min(args.n, 48 if r.device.type == "cpu" else 2000)
    nv = naive(args.model, items, naive_n, str(r.device))
    report["end_to_end"] = e2e
    report["model_only"] = mo
    report["naive_baseline"] = nv
    report["ratios"] = {
        "end_to_end_over_model_only": round(e2e["images_per_s"] / mo["images_per_s"], 3),
        "end_to_end_over_naive": round(e2e["images_per_s"] / nv["images_per_s"], 2),
    }
    goals = {
        "end_to_end_ge_0.85x_model_only": report["ratios"]["end_to_end_over_model_only"] >= 0.85,
        "end_to_end_ge_3x_naive": report["ratios"]["end_to_end_over_naive"] >= 3.0,
    }
    if not args.skip_rss:
        big = _child(args, rss_n[1])
        report["peak_rss"] = {
            "unit": "MB",
            str(rss_n[0]): {k: e2e[k] for k in e2e if k.startswith("peak")},
            str(rss_n[1]): {k: big[k] for k in big if k.startswith("peak")},
            "end_to_end_images_per_s_at_larger_n": big["images_per_s"],
        }
        growth = big["peak_rss_mb"] / e2e["peak_rss_mb"]
        report["peak_rss"]["ratio_larger_over_smaller"] = round(growth, 3)
        goals["peak_rss_flat_within_10pct"] = growth <= 1.10
    if r.device.type == "cuda":
        goals["end_to_end_ge_8000_per_s_gpu"] = e2e["images_per_s"] >= 8000
    report["goals_met"] = goals
    if args.sweep:
        report["sweep"] = {"images": args.sweep, "rows": sweep(args, loaded, items_all[: args.sweep])}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
