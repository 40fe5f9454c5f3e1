"""Items to score, bad input, preprocessing and decoding (PIL on CPU workers, or raw JPEG bytes
for on-device decoding): every bad file becomes a skip with its reason, never an exception."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image, ImageFile
from torch.utils.data import Dataset

# torchvision 0.29 deprecates its image decoders in favour of TorchCodec (not installed here);
# decode_jpeg on the GPU is still the fastest path available with torch + torchvision alone.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities", category=DeprecationWarning)

# Never decode a truncated file into a half-gray picture: a truncated file is skipped with its reason.
ImageFile.LOAD_TRUNCATED_IMAGES = False


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
