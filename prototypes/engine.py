"""Prototype scoring engine: pure torch/torchvision/Pillow, no Django import.

ImageNet-X's prototypes of a class are the images a ResNet-50 classifies correctly with
the highest predicted probability, three per class. This module scores (path, true class)
pairs with any torchvision classifier and keeps, while it streams, a per-class top-k of the
correctly classified images (and, for --fill-incorrect, a per-class top-k of the incorrect
ones ranked by the true class's probability). Nothing grows with the number of images: no
N x 1000 logits are kept, only k entries per class.

It runs on a bare GPU box (bench/prototypes.py --standalone), inside a Celery worker, or from
`manage.py compute_prototypes`; the Django side (prototypes/services.py) only feeds it paths
and stores what it returns.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import math
import os
import platform
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from PIL import Image, ImageFile
from torch.utils.data import DataLoader, Dataset

# torchvision 0.29 deprecates its image decoders in favour of TorchCodec (not installed here);
# decode_jpeg on the GPU is still the fastest path available with torch + torchvision alone.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities", category=DeprecationWarning)

# Never decode a truncated file into a half-gray picture: a truncated file is skipped with its reason.
ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_MODEL = "resnet50"
DEFAULT_WEIGHTS = "IMAGENET1K_V1"  # the classic 76.1% top-1 ResNet-50 the paper used
DEFAULT_K = 3  # three prototypes per class (ImageNet-X)


class EngineError(Exception):
    """A problem the caller must fix (bad model name, weights that cannot be loaded...)."""


# --- Items and bad input -----------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One image to score. `key` is the dataset's file name: it breaks ties and names the image."""

    key: str
    path: str
    label: int


@dataclass
class Skip:
    key: str
    reason: str


# Reasons are short fixed prefixes (so the run can count them) followed by the detail.
R_UNREADABLE = "unreadable"
R_TRUNCATED = "truncated"
R_TOO_LARGE = "too large"
R_MISSING = "missing file"
R_LABEL = "class index out of range"
C_GRAYSCALE = "converted: grayscale"
C_CMYK = "converted: CMYK"
C_ALPHA = "converted: alpha flattened on white"
C_PALETTE = "converted: palette"
C_OTHER_MODE = "converted: other mode"
C_DRAFT = "converted: large JPEG decoded at reduced scale"


def reason_kind(reason: str) -> str:
    """The fixed part of a reason ('truncated: ...' -> 'truncated')."""
    return reason.split(":", 1)[0] if not reason.startswith("converted:") else ":".join(reason.split(":", 2)[:2])


def _to_rgb(img: Image.Image) -> tuple[Image.Image, str | None]:
    """Convert any Pillow mode to RGB; return the conversion note (None when it was RGB already)."""
    mode = img.mode
    if mode == "RGB":
        return img, None
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Transparent pixels keep arbitrary colour values; compositing on white shows what a
        # viewer shows instead of that hidden colour.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB"), C_ALPHA
    if mode in ("L", "1", "I", "I;16", "F"):
        if mode in ("I", "I;16", "F"):
            img = img.point(lambda v: v / 256) if mode != "F" else img  # 16-bit to 8-bit range
        return img.convert("L").convert("RGB"), C_GRAYSCALE
    if mode == "CMYK":
        return img.convert("RGB"), C_CMYK
    if mode == "P":
        return img.convert("RGB"), C_PALETTE
    return img.convert("RGB"), f"{C_OTHER_MODE} {mode}"


@dataclass
class Preprocess:
    """The weights' own evaluation transform, split in two halves.

    Workers do resize (antialiased, the weights' interpolation) + centre crop on uint8 pixels;
    the float conversion and normalisation run batched on the compute device. The result equals
    `weights.transforms()` applied per image up to float rounding (same ops, same order), but
    workers ship uint8 tensors (4x less to copy to the GPU) and normalisation is one fused op.
    """

    crop_size: int = 224
    resize_size: int = 256
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    jpeg_draft: bool = True  # decode large JPEGs at a reduced DCT scale still >= resize_size

    @classmethod
    def from_transform(cls, t: Any, *, crop_size: int | None = None, jpeg_draft: bool = True) -> Preprocess:
        crop = int(t.crop_size[0])
        resize = int(t.resize_size[0])
        if crop_size:
            # Smaller inputs for tests/benchmarks: keep the weights' resize/crop ratio.
            resize = round(crop_size * resize / crop)
            crop = crop_size
        return cls(
            crop_size=crop,
            resize_size=resize,
            mean=tuple(float(m) for m in t.mean),
            std=tuple(float(s) for s in t.std),
            interpolation=str(t.interpolation.value),
            jpeg_draft=jpeg_draft,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "resize": self.resize_size,
            "crop": self.crop_size,
            "interpolation": self.interpolation,
            "antialias": True,
            "mean": list(self.mean),
            "std": list(self.std),
            "jpeg_draft": self.jpeg_draft,
        }

    def pil_interp(self) -> int:
        from PIL.Image import Resampling

        return {"bilinear": Resampling.BILINEAR, "bicubic": Resampling.BICUBIC, "nearest": Resampling.NEAREST}[
            self.interpolation
        ]

    def resize_crop(self, img: Image.Image) -> torch.Tensor:
        """PIL RGB image -> uint8 CHW tensor, resized (shorter side) and centre-cropped."""
        w, h = img.size
        s = self.resize_size
        # torchvision's resize rule for an int size: the shorter side becomes `s`, the longer
        # side is int(s * long / short) (truncated, as torchvision does).
        if w <= h:
            nw, nh = s, int(s * h / w)
        else:
            nw, nh = int(s * w / h), s
        if (nw, nh) != (w, h):
            img = img.resize((nw, nh), self.pil_interp(), reducing_gap=None)
        c = self.crop_size
        left = int(round((nw - c) / 2.0))
        top = int(round((nh - c) / 2.0))
        img = img.crop((left, top, left + c, top + c))
        return torch.from_numpy(_np_from_pil(img)).permute(2, 0, 1).contiguous()

    def normalize_batch(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """uint8 NCHW on the device -> normalised float, channels_last."""
        mean = torch.tensor(self.mean, device=x.device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, device=x.device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        x = (x.float() - mean) / std
        return x.to(dtype).contiguous(memory_format=torch.channels_last)


def _np_from_pil(img: Image.Image):
    import numpy as np

    return np.array(img, dtype=np.uint8)  # a writable copy (torch refuses read-only buffers)


def _failure_reason(exc: Exception) -> str:
    msg = str(exc)
    low = msg.lower()
    if isinstance(exc, OSError) and ("truncated" in low or "broken data stream" in low or "premature end" in low):
        return f"{R_TRUNCATED}: {msg}"
    return f"{R_UNREADABLE}: {type(exc).__name__}: {msg}"


def decode_image(path: str, pre: Preprocess, max_pixels: int) -> tuple[torch.Tensor | None, str | None]:
    """Decode one file to a uint8 CHW tensor. Returns (tensor, note) or (None, skip reason).

    Never raises for bad files: the reason says what was wrong.
    """
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below decides; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except FileNotFoundError:
        return None, f"{R_MISSING}: {path}"
    except Image.DecompressionBombError as exc:
        return None, f"{R_TOO_LARGE}: {exc}"
    except Exception as exc:  # Pillow raises many types for garbage (UnidentifiedImageError, OSError, SyntaxError...)
        return None, _failure_reason(exc)
    try:
        w, h = img.size
        notes: list[str] = []
        if w * h > max_pixels:
            return None, f"{R_TOO_LARGE}: {w}x{h} = {w * h} pixels > limit {max_pixels}"
        if pre.jpeg_draft and img.format == "JPEG" and min(w, h) >= 2 * pre.resize_size:
            # Huge JPEGs: let libjpeg decode at 1/2, 1/4 or 1/8 scale, still at least
            # resize_size on the shorter side, so the resize that follows only loses what it
            # would have averaged away anyway; decoding cost drops by up to 64x.
            img.draft("RGB", (pre.resize_size, pre.resize_size))
            notes.append(C_DRAFT)
        img.load()
        rgb, note = _to_rgb(img)
        if note:
            notes.append(note)
        return pre.resize_crop(rgb), "; ".join(notes) or None
    except Exception as exc:
        return None, _failure_reason(exc)
    finally:
        img.close()


class ImageItems(Dataset):
    """Decodes in __getitem__ and never raises: a bad file becomes a sentinel (tensor None + reason)
    so the collate function drops it and the rest of its batch is scored."""

    def __init__(
        self, items: Sequence[Item], pre: Preprocess, *, num_classes: int, max_pixels: int, raw_bytes: bool = False
    ) -> None:
        self.items = items
        self.pre = pre
        self.num_classes = num_classes
        self.max_pixels = max_pixels
        self.raw_bytes = raw_bytes

    def __len__(self) -> int:
        return len(self.items)

    def _fits_device_decode(self, path: str) -> bool:
        """Plain RGB/grayscale baseline JPEGs of ordinary size go to nvjpeg; the header (read
        without decoding) sends CMYK, huge, or otherwise odd files to the PIL path, which
        converts or skips them with their reason."""
        try:
            with Image.open(path) as img:
                w, h = img.size
                return (
                    img.format == "JPEG"
                    and img.mode in ("RGB", "L")
                    and w * h <= self.max_pixels
                    and min(w, h) < 2 * self.pre.resize_size
                )
        except Exception:
            return False  # the PIL path records why

    def __getitem__(self, i: int) -> tuple[int, Any, str | None]:
        it = self.items[i]
        if not 0 <= it.label < self.num_classes:
            return i, None, f"{R_LABEL}: {it.label} not in 0..{self.num_classes - 1}"
        if self.raw_bytes and it.path.lower().endswith((".jpg", ".jpeg")) and self._fits_device_decode(it.path):
            # GPU decoding path: ship the file's bytes, nvjpeg decodes the batch on the device.
            # Plain bytes, not a tensor: a tensor from torchvision.io.read_file made the worker hang
            # on its way back through the DataLoader queue here; bytes pickle plainly and become
            # a tensor in the main process (torch.frombuffer, no copy).
            try:
                with open(it.path, "rb") as f:
                    return i, f.read(), "raw"
            except Exception as exc:
                return i, None, f"{R_MISSING}: {exc}"
        return (i, *decode_image(it.path, self.pre, self.max_pixels))


@dataclass
class Batch:
    indices: list[int]
    pixels: torch.Tensor | None  # uint8 NCHW
    raw: list[tuple[int, bytes]]  # (index, encoded JPEG bytes) for on-device decoding
    skipped: list[tuple[int, str]]
    notes: list[tuple[int, str]]

    def pin_memory(self) -> Batch:
        if self.pixels is not None:
            self.pixels = self.pixels.pin_memory()
        return self


def collate(samples: list[tuple[int, Any, str | None]]) -> Batch:
    good, raw, skipped, notes = [], [], [], []
    for i, t, note in samples:
        if t is None:
            skipped.append((i, note or R_UNREADABLE))
        elif note == "raw":
            raw.append((i, t))
        else:
            good.append((i, t))
            if note:
                notes.append((i, note))
    pixels = torch.stack([t for _, t in good]) if good else None
    return Batch([i for i, _ in good], pixels, raw, skipped, notes)


# --- Streaming top-k ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """A candidate prototype. Ranked by score (descending), ties by key (ascending)."""

    score: float
    key: str
    prob: float  # predicted probability (== score for correct entries)
    true_prob: float
    predicted: int

    def __lt__(self, other: Entry) -> bool:
        # "Worse than": the min-heap keeps the worst candidate on top, ready to be evicted.
        if self.score != other.score:
            return self.score < other.score
        return self.key > other.key

    def to_list(self) -> list:
        return [self.score, self.key, self.prob, self.true_prob, self.predicted]

    @classmethod
    def from_list(cls, v: list) -> Entry:
        return cls(float(v[0]), str(v[1]), float(v[2]), float(v[3]), int(v[4]))


class _TopK:
    __slots__ = ("k", "heap")

    def __init__(self, k: int) -> None:
        self.k = k
        self.heap: list[Entry] = []

    def push(self, e: Entry) -> None:
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, e)
        elif self.heap[0] < e:
            heapq.heapreplace(self.heap, e)

    def best_first(self) -> list[Entry]:
        return sorted(self.heap, reverse=True)


@dataclass
class TopKState:
    """Per class: top-k correct images by predicted probability, top-k incorrect by true-class
    probability (for --fill-incorrect), and counts. JSON-safe via to_dict; merging two states
    is exact because the top-k of a union is contained in the union of the top-ks."""

    k: int = DEFAULT_K
    correct: dict[int, _TopK] = field(default_factory=dict)
    incorrect: dict[int, _TopK] = field(default_factory=dict)
    scored: Counter = field(default_factory=Counter)
    n_correct: Counter = field(default_factory=Counter)

    def add(self, key: str, label: int, predicted: int, prob: float, true_prob: float) -> None:
        self.scored[label] += 1
        if predicted == label:
            self.n_correct[label] += 1
            self.correct.setdefault(label, _TopK(self.k)).push(Entry(prob, key, prob, true_prob, predicted))
        else:
            self.incorrect.setdefault(label, _TopK(self.k)).push(Entry(true_prob, key, prob, true_prob, predicted))

    def merge(self, other: TopKState) -> TopKState:
        if other.k != self.k:
            raise EngineError(f"cannot merge top-{other.k} into top-{self.k}")
        for src, dst in ((other.correct, self.correct), (other.incorrect, self.incorrect)):
            for label, tk in src.items():
                mine = dst.setdefault(label, _TopK(self.k))
                for e in tk.heap:
                    mine.push(e)
        self.scored.update(other.scored)
        self.n_correct.update(other.n_correct)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "correct": {str(c): [e.to_list() for e in tk.best_first()] for c, tk in self.correct.items()},
            "incorrect": {str(c): [e.to_list() for e in tk.best_first()] for c, tk in self.incorrect.items()},
            "scored": {str(c): n for c, n in self.scored.items()},
            "n_correct": {str(c): n for c, n in self.n_correct.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TopKState:
        s = cls(k=int(d["k"]))
        for name in ("correct", "incorrect"):
            target = getattr(s, name)
            for c, entries in d[name].items():
                tk = target.setdefault(int(c), _TopK(s.k))
                for v in entries:
                    tk.push(Entry.from_list(v))
        s.scored = Counter({int(c): int(n) for c, n in d["scored"].items()})
        s.n_correct = Counter({int(c): int(n) for c, n in d["n_correct"].items()})
        return s

    def select(self, *, fill_incorrect: bool = False) -> dict[int, list[Selected]]:
        """The paper's rule: per class the k correct images with the highest predicted
        probability (ties by file name). Short classes are filled from the incorrect images
        with the highest true-class probability only when asked, and marked `filled`."""
        out: dict[int, list[Selected]] = {}
        for label in sorted(set(self.scored)):
            chosen = [
                Selected(e.key, e.prob, e.true_prob, e.predicted, False)
                for e in (self.correct[label].best_first() if label in self.correct else [])
            ]
            if fill_incorrect and len(chosen) < self.k and label in self.incorrect:
                for e in self.incorrect[label].best_first()[: self.k - len(chosen)]:
                    chosen.append(Selected(e.key, e.prob, e.true_prob, e.predicted, True))
            out[label] = chosen
        return out

    def short_classes(self) -> dict[int, int]:
        """Classes with fewer than k correctly classified images: {class: correct count}."""
        return {c: self.n_correct.get(c, 0) for c in self.scored if self.n_correct.get(c, 0) < self.k}


@dataclass(frozen=True)
class Selected:
    key: str
    prob: float
    true_prob: float
    predicted: int
    filled: bool


# --- Model and weights -----------------------------------------------------------------------
@dataclass
class ModelSpec:
    name: str = DEFAULT_MODEL
    weights: str | None = DEFAULT_WEIGHTS  # enum member name, or None/"none" for random weights
    checkpoint: str | None = None
    seed: int = 0  # random-weight init, so every shard worker builds the same network
    image_size: int | None = None  # override the crop size (tests, benchmarks); None = the weights'


@dataclass
class LoadedModel:
    model: torch.nn.Module
    pre: Preprocess
    num_classes: int
    weights_id: str
    weights_sha256: str


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def normalize_weights_name(weights: str | None) -> str | None:
    if weights is None or str(weights).strip().lower() in ("", "none", "random"):
        return None
    return str(weights).strip()


def load_model(spec: ModelSpec) -> LoadedModel:
    """Build a torchvision classifier with the requested weights, in eval mode on the CPU.

    Raises EngineError with a message naming --checkpoint when weights cannot be loaded.
    """
    try:
        weights_enum = torchvision.models.get_model_weights(spec.name)
    except Exception:
        raise EngineError(
            f"unknown model {spec.name!r}: use a torchvision classification model name "
            f"(e.g. resnet50, resnet18, mobilenet_v3_small, efficientnet_b0, vit_b_16)"
        )
    wname = normalize_weights_name(spec.weights)
    if spec.checkpoint and wname and wname != DEFAULT_WEIGHTS:
        raise EngineError("give either --weights or --checkpoint, not both")
    # The preprocessing comes from the weights enum (metadata only, nothing downloaded); a
    # checkpoint or random weights use the model's default ImageNet evaluation transform.
    if wname and not spec.checkpoint:
        try:
            w = weights_enum[wname]
        except KeyError:
            names = ", ".join(m.name for m in weights_enum)
            raise EngineError(f"{spec.name} has no weights {wname!r}; available: {names}, or --weights none")
    else:
        # A checkpoint or random weights: the classic weights' transform when the model has them
        # (ResNet-50's DEFAULT is IMAGENET1K_V2, which resizes to 232; the paper's V1 used 256).
        w = weights_enum.__members__.get(DEFAULT_WEIGHTS, weights_enum.DEFAULT)
    pre = Preprocess.from_transform(w.transforms(), crop_size=spec.image_size)
    num_classes = len(w.meta["categories"])
    torch.manual_seed(spec.seed)
    model = torchvision.models.get_model(spec.name, weights=None, num_classes=num_classes)

    if spec.checkpoint:
        path = Path(spec.checkpoint)
        if not path.is_file():
            raise EngineError(f"--checkpoint {spec.checkpoint}: no such file")
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise EngineError(f"--checkpoint {spec.checkpoint} cannot be read as a torch state dict: {exc}")
        if isinstance(sd, dict):
            for key in ("state_dict", "model", "model_state_dict"):
                if key in sd and isinstance(sd[key], dict):
                    sd = sd[key]
                    break
            sd = {k.removeprefix("module."): v for k, v in sd.items()}
        try:
            model.load_state_dict(sd)
        except Exception as exc:
            raise EngineError(f"--checkpoint {spec.checkpoint} does not fit {spec.name}: {str(exc)[:500]}")
        weights_id, sha = f"checkpoint:{path.name}", _sha256(path)
    elif wname:
        try:
            sd = w.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:
            raise EngineError(
                f"could not load {spec.name} weights {wname} from {w.url} ({type(exc).__name__}: {exc}). "
                f"Without network access, download the file elsewhere and pass it with --checkpoint FILE "
                f"(or place it in the torch hub cache, {torch.hub.get_dir()}/checkpoints); "
                f"random weights need an explicit --weights none."
            )
        model.load_state_dict(sd)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
        weights_id, sha = f"{type(w).__name__}.{w.name}", _sha256(cached) if cached.is_file() else ""
    else:
        weights_id, sha = f"none (random init, seed {spec.seed})", ""
    model.eval()
    return LoadedModel(model, pre, num_classes, weights_id, sha)


# --- Scoring ---------------------------------------------------------------------------------
@dataclass
class ScoreOptions:
    device: str = "auto"  # auto -> cuda when available
    batch_size: int | None = None  # None -> 256 on CUDA, 32 on CPU (see bench/prototypes.py)
    num_workers: int | None = None  # None -> see default_workers()
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


# --- Predictions files (the imagenet-x toolkit's format) ------------------------------------------
PRED_COLUMNS = ["file_name", "predicted_class", "predicted_probability"]
# Optional extra column we write so that --fill-incorrect also works from a predictions file;
# the toolkit reads columns by name and ignores it.
TRUE_PROB_COLUMN = "true_class_probability"


class PredictionWriter:
    """Streams predictions to CSV as they are produced (nothing kept in memory)."""

    def __init__(self, path: str | Path, *, with_true_prob: bool = True) -> None:
        self.f = open(path, "w", newline="")
        self.w = csv.writer(self.f)
        self.with_true_prob = with_true_prob
        self.w.writerow(PRED_COLUMNS + ([TRUE_PROB_COLUMN] if with_true_prob else []))

    def __call__(self, key: str, label: int, predicted: int, prob: float, true_prob: float) -> None:
        row = [key, predicted, repr(prob)]
        if self.with_true_prob:
            row.append(repr(true_prob))
        self.w.writerow(row)

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class PredictionRow:
    key: str
    predicted: int
    prob: float
    true_prob: float | None


def read_predictions(path: str | Path) -> Iterator[PredictionRow | Skip]:
    """Rows of a predictions CSV; a malformed row yields a Skip with its line number."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in PRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise EngineError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(PRED_COLUMNS)}")
        has_true = TRUE_PROB_COLUMN in (reader.fieldnames or [])
        for line, row in enumerate(reader, start=2):
            try:
                prob = float(row["predicted_probability"])
                if not (0.0 <= prob <= 1.0) or math.isnan(prob):
                    raise ValueError(f"probability {prob} outside [0, 1]")
                tp = float(row[TRUE_PROB_COLUMN]) if has_true and row.get(TRUE_PROB_COLUMN) not in (None, "") else None
                yield PredictionRow(row["file_name"], int(row["predicted_class"]), prob, tp)
            except (ValueError, TypeError) as exc:
                yield Skip(row.get("file_name") or f"line {line}", f"bad predictions row (line {line}): {exc}")


def state_from_predictions(
    rows: Iterable[PredictionRow], labels: dict[str, int], *, k: int = DEFAULT_K, num_classes: int | None = None
) -> tuple[TopKState, list[Skip]]:
    """Select prototypes without a model. Rows whose file is not in `labels` are skipped."""
    state = TopKState(k=k)
    skipped: list[Skip] = []
    for row in rows:
        if isinstance(row, Skip):
            skipped.append(row)
            continue
        label = labels.get(row.key)
        if label is None:
            skipped.append(Skip(row.key, "not in dataset"))
            continue
        if num_classes is not None and not 0 <= row.predicted < num_classes:
            skipped.append(Skip(row.key, f"{R_LABEL}: predicted {row.predicted}"))
            continue
        true_prob = row.true_prob if row.true_prob is not None else (row.prob if row.predicted == label else 0.0)
        state.add(row.key, label, row.predicted, row.prob, true_prob)
    return state, skipped


def predictions_have_true_prob(path: str | Path) -> bool:
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    return TRUE_PROB_COLUMN in header


def state_bytes(state: TopKState) -> int:
    """Size of a state's JSON (for the record: it depends on classes x k, not on images)."""
    import json

    return len(json.dumps(state.to_dict()).encode())


__all__ = [
    "DEFAULT_K",
    "DEFAULT_MODEL",
    "DEFAULT_WEIGHTS",
    "EngineError",
    "Item",
    "LoadedModel",
    "ModelSpec",
    "PredictionWriter",
    "Preprocess",
    "ScoreOptions",
    "ScoreResult",
    "Selected",
    "Skip",
    "TopKState",
    "decode_image",
    "library_versions",
    "load_model",
    "read_predictions",
    "reason_kind",
    "score",
    "state_from_predictions",
]
