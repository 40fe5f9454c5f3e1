"""Scoring: options resolved for the device, the DataLoader over decode workers, on-device JPEG
decoding, batched inference, and the stream of predictions into a TopKState."""

from __future__ import annotations

import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader

from prototypes.engine.decode import R_UNREADABLE, ImageItems, Item, Preprocess, Skip, collate, decode_image
from prototypes.engine.errors import EngineError
from prototypes.engine.model import LoadedModel
from prototypes.engine.topk import DEFAULT_K, TopKState


@dataclass
class ScoreOptions:
    device: str = "auto"  # auto -> cuda when available
    batch_size: int | None = None  # None -> 256 on CUDA, 32 on CPU (see bench/prototypes.py)
    num_workers: int | None = None  # None -> see resolve()
    dtype: str = "auto"  # auto -> bf16 on CUDA and on CPUs with native bf16, else fp32; or fp32 / bf16 / fp16
    channels_last: bool = True
    decode: str = "auto"  # auto|cpu|device: device = torchvision.io.decode_jpeg on the GPU (nvjpeg)
    threads: int | None = None  # torch intra-op threads on CPU; None -> cores minus decode workers
    max_pixels: int = Image.MAX_IMAGE_PIXELS or 89_478_485  # Pillow's own bomb limit by default
    k: int = DEFAULT_K


@dataclass
class Resolved:
    device: torch.device
    batch_size: int
    num_workers: int
    dtype: torch.dtype
    decode: str
    threads: int


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve(opts: ScoreOptions) -> Resolved:
    dev = opts.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(dev)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError("--device cuda requested but CUDA is not available here")
    cuda = device.type == "cuda"
    # bf16 autocast on CUDA; on a CPU with native bf16 (AVX512-BF16/AMX) too: on this project's
    # 2-core EPYC, bench/prototypes.py --sweep measured ResNet-50 end to end at 7.9 images/s in
    # bf16 against ~2 in fp32 (bench/results/prototypes_cpu_sweep.json). Softmax stays in fp32;
    # --dtype fp32 gives the exact fp32 probabilities.
    dtype_name = opts.dtype if opts.dtype != "auto" else ("bf16" if cuda or cpu_has_native_bf16() else "fp32")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype_name)
    if dtype is None:
        raise EngineError(f"unknown dtype {opts.dtype!r} (fp32, bf16, fp16)")
    cores = cpu_count()
    if opts.num_workers is not None:
        workers = opts.num_workers
    elif cuda:
        workers = max(1, min(32, cores - 1))
    else:
        # On the 2-core machine bench/prototypes.py measured one decode worker next to 2 torch
        # threads as the fastest end to end (decoding a 500x375 JPEG is ~5% of a ResNet-50
        # forward on CPU, so one worker keeps up and overlaps with inference).
        workers = 1
    threads = opts.threads or (cores if not cuda else max(1, min(4, cores)))
    decode = opts.decode
    if decode == "auto":
        decode = "device" if cuda else "cpu"
    # An explicit decode="device" on the CPU runs torchvision's decoder in the main process: not
    # a fast path (decoding no longer overlaps inference), but the GPU path's code, testable here.
    bs = opts.batch_size or (256 if cuda else 32)
    return Resolved(device, bs, workers, dtype, decode, threads)


@dataclass
class ScoreResult:
    state: TopKState
    scored: int
    skipped: list[Skip]
    notes: Counter  # conversion note -> count
    wall_s: float
    resolved: dict[str, Any]

    @property
    def images_per_s(self) -> float:
        return self.scored / self.wall_s if self.wall_s > 0 else 0.0


PredictionSink = Callable[[str, int, int, float, float], None]  # key, label, predicted, prob, true_prob


def _decode_on_device(
    raw: list[tuple[int, bytes]],
    pre: Preprocess,
    device: torch.device,
    fallback: Callable[[int], tuple[torch.Tensor | None, str | None]],
) -> tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]:
    """nvjpeg batch decode, then resize + centre crop on the device.

    Images of the same size are resized in one call (most ImageNet photos share a handful of
    sizes), which keeps the per-image Python overhead off the GPU's critical path. A file nvjpeg
    refuses goes through the PIL path (`fallback`), so it is converted or skipped with a reason.
    """
    import torchvision.transforms.v2.functional as F

    mode = torchvision.io.ImageReadMode.RGB
    pairs: list[tuple[int, torch.Tensor]] = []
    bad: list[tuple[int, str]] = []
    on_cpu: list[tuple[int, torch.Tensor]] = []
    raw_t = [(i, torch.frombuffer(bytearray(d), dtype=torch.uint8)) for i, d in raw]
    try:
        decoded = torchvision.io.decode_jpeg([d for _, d in raw_t], mode=mode, device=device)
        pairs = list(zip([i for i, _ in raw], decoded, strict=True))
    except Exception:
        for i, d in raw_t:  # one bad file must not lose the batch: retry one by one
            try:
                pairs.append((i, torchvision.io.decode_jpeg(d, mode=mode, device=device)))
            except Exception:
                t, note = fallback(i)
                if t is None:
                    bad.append((i, note or R_UNREADABLE))
                else:
                    on_cpu.append((i, t))
    interp = {"bilinear": F.InterpolationMode.BILINEAR, "bicubic": F.InterpolationMode.BICUBIC}[pre.interpolation]
    groups: dict[tuple[int, ...], list[tuple[int, torch.Tensor]]] = {}
    for i, img in pairs:
        groups.setdefault(tuple(img.shape), []).append((i, img))
    idx: list[int] = []
    out: list[torch.Tensor] = []
    for members in groups.values():
        stacked = torch.stack([img for _, img in members])
        resized = F.resize(stacked, [pre.resize_size], interpolation=interp, antialias=True)
        out.append(F.center_crop(resized, [pre.crop_size]))
        idx.extend(i for i, _ in members)
    if on_cpu:
        out.append(torch.stack([t for _, t in on_cpu]).to(device))
        idx.extend(i for i, _ in on_cpu)
    return idx, (torch.cat(out) if out else None), bad


def score(
    items: Sequence[Item],
    loaded: LoadedModel,
    opts: ScoreOptions | None = None,
    *,
    on_batch: Callable[[int, int], None] | None = None,
    sink: PredictionSink | None = None,
) -> ScoreResult:
    """Score `items` and stream them into a TopKState. Never stops on a bad file.

    on_batch(n_scored, n_skipped) is called after each batch (progress); sink receives every
    scored image's prediction (for a predictions export), so nothing per image is kept here.
    """
    opts = opts or ScoreOptions()
    r = resolve(opts)
    if r.device.type == "cpu":
        torch.set_num_threads(r.threads)
    model = loaded.model.to(r.device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    pre = loaded.pre
    ds = ImageItems(
        items, pre, num_classes=loaded.num_classes, max_pixels=opts.max_pixels, raw_bytes=r.decode == "device"
    )
    cuda = r.device.type == "cuda"
    loader = DataLoader(
        ds,
        batch_size=r.batch_size,
        shuffle=False,
        num_workers=r.num_workers,
        collate_fn=collate,
        pin_memory=cuda,
        persistent_workers=False,
        prefetch_factor=(4 if cuda else 2) if r.num_workers > 0 else None,
        # Each decode worker uses one thread: parallelism comes from the workers, not from
        # oversubscribing the cores torch computes on.
        worker_init_fn=_worker_init if r.num_workers > 0 else None,
    )
    state = TopKState(k=opts.k)
    skipped: list[Skip] = []
    notes: Counter = Counter()
    scored = 0
    autocast = r.dtype != torch.float32
    t0 = time.perf_counter()
    with torch.inference_mode():
        for batch in loader:
            for i, reason in batch.skipped:
                skipped.append(Skip(items[i].key, reason))
            for _, note in batch.notes:
                for n in note.split("; "):
                    notes[n] += 1
            parts: list[tuple[list[int], torch.Tensor]] = []
            if batch.pixels is not None:
                parts.append((batch.indices, batch.pixels.to(r.device, non_blocking=cuda)))
            if batch.raw:
                idx, px, bad = _decode_on_device(
                    batch.raw, pre, r.device, lambda i: decode_image(items[i].path, pre, opts.max_pixels)
                )
                skipped.extend(Skip(items[i].key, reason) for i, reason in bad)
                if px is not None:
                    parts.append((idx, px))
            n_batch = 0
            for idx, px in parts:
                x = pre.normalize_batch(px, torch.float32 if autocast else r.dtype)
                if autocast:
                    with torch.autocast(r.device.type, dtype=r.dtype):
                        logits = model(x)
                else:
                    logits = model(x)
                probs = torch.softmax(logits.float(), dim=1)
                labels = torch.tensor([items[i].label for i in idx], device=probs.device)
                pmax, pred = probs.max(dim=1)
                ptrue = probs.gather(1, labels.view(-1, 1)).squeeze(1)
                pmax_l, pred_l, ptrue_l = pmax.tolist(), pred.tolist(), ptrue.tolist()
                for j, i in enumerate(idx):
                    it = items[i]
                    state.add(it.key, it.label, pred_l[j], pmax_l[j], ptrue_l[j])
                    if sink is not None:
                        sink(it.key, it.label, pred_l[j], pmax_l[j], ptrue_l[j])
                n_batch += len(idx)
            scored += n_batch
            if on_batch is not None:
                on_batch(n_batch, len(batch.skipped))
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    resolved = {
        "device": str(r.device),
        "device_name": torch.cuda.get_device_name(r.device) if cuda else platform.processor() or platform.machine(),
        "dtype": str(r.dtype).removeprefix("torch."),
        "batch_size": r.batch_size,
        "num_workers": r.num_workers,
        "threads": r.threads if not cuda else None,
        "decode": r.decode,
        "channels_last": opts.channels_last,
    }
    return ScoreResult(state, scored, skipped, notes, wall, resolved)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def library_versions() -> dict[str, str]:
    import PIL

    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
        "cuda": str(torch.version.cuda),
    }
