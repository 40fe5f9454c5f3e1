"""Building a torchvision classifier with its weights (enum, checkpoint file, or random init)
and the weights' own evaluation preprocessing."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

from prototypes.engine.decode import Preprocess
from prototypes.engine.errors import EngineError

DEFAULT_MODEL = "resnet50"
DEFAULT_WEIGHTS = "IMAGENET1K_V1"  # the classic 76.1% top-1 ResNet-50 the paper used


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


def file_sha256(path: str | Path) -> str:
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
        weights_id, sha = f"checkpoint:{path.name}", file_sha256(path)
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
        weights_id, sha = f"{type(w).__name__}.{w.name}", file_sha256(cached) if cached.is_file() else ""
    else:
        weights_id, sha = f"none (random init, seed {spec.seed})", ""
    model.eval()
    return LoadedModel(model, pre, num_classes, weights_id, sha)
