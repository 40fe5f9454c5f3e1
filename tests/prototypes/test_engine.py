"""The scoring engine (no Django): streaming top-k, exact shard merge, ties, preprocessing."""

from __future__ import annotations

# The engine needs no database: these also run on the embedded default.
import json
import random

import pytest
import torchvision
from PIL import Image as PILImage

from prototypes import engine
from prototypes.engine.scoring import _decode_on_device
from tests.prototypes.conftest import relabel_as_predicted

pytestmark = pytest.mark.embedded


def _brute_force(preds: list[tuple[str, int, int, float, float]], k: int) -> dict[int, list[str]]:
    by_class: dict[int, list[tuple[float, str]]] = {}
    for key, label, pred, prob, _ in preds:
        if pred == label:
            by_class.setdefault(label, []).append((prob, key))
    return {c: [key for _, key in sorted(v, key=lambda t: (-t[0], t[1]))[:k]] for c, v in by_class.items()}


def test_streaming_topk_equals_brute_force_sort_with_many_ties():
    rng = random.Random(7)
    preds = []
    for i in range(5000):
        label = rng.randrange(20)
        pred = label if rng.random() < 0.6 else rng.randrange(20)
        prob = rng.choice([0.5, 0.25, 0.75, rng.random()])  # many exact ties
        preds.append((f"f{rng.randrange(10**6):07d}_{i}", label, pred, prob, prob))
    state = engine.TopKState(k=3)
    for p in preds:
        state.add(*p)
    got = {c: [s.key for s in sel if not s.filled] for c, sel in state.select().items()}
    want = _brute_force(preds, 3)
    assert {c: v for c, v in got.items() if v} == want


def test_ties_are_broken_by_file_name_whatever_the_arrival_order():
    keys = ["b.jpg", "a.jpg", "d.jpg", "c.jpg"]
    for order in (keys, list(reversed(keys))):
        state = engine.TopKState(k=3)
        for key in order:
            state.add(key, 5, 5, 0.9, 0.9)
        assert [s.key for s in state.select()[5]] == ["a.jpg", "b.jpg", "c.jpg"]


def _state_bytes(state: engine.TopKState) -> int:
    """Size of a state's JSON, as a shard row stores it."""
    return len(json.dumps(state.to_dict()).encode())


def test_state_size_does_not_grow_with_the_number_of_images():
    sizes = []
    for n in (1_000, 20_000):
        state = engine.TopKState(k=3)
        rng = random.Random(1)
        for i in range(n):
            c = i % 10
            state.add(f"img{i:06d}", c, c if i % 3 else (c + 1) % 10, rng.random(), rng.random())
        sizes.append(_state_bytes(state))
    # Only counts' digits may grow; entries are k per class whatever N is.
    assert sizes[1] < sizes[0] * 1.1


def test_engine_topk_matches_brute_force_on_real_model_predictions(tiny_model, opts, jpeg_items):
    items = relabel_as_predicted(jpeg_items, tiny_model, opts)
    preds: list = []
    result = engine.score(items, tiny_model, opts, sink=lambda *row: preds.append(row))
    assert result.scored == len(items) and not result.skipped
    got = {c: [s.key for s in sel] for c, sel in result.state.select().items() if sel}
    assert got == _brute_force(preds, 3)
    assert got, "relabelled items must give at least one correct class"


def test_shard_merge_equals_one_pass(tiny_model, opts, jpeg_items):
    items = relabel_as_predicted(jpeg_items, tiny_model, opts)
    one_pass = engine.score(items, tiny_model, opts).state
    # Shards of 8 with batches of 4: every batch holds the same images in both computations,
    # so the probabilities are bit-identical and the states must be equal exactly.
    merged = engine.TopKState(k=3)
    for lo in range(0, len(items), 8):
        shard_state = engine.score(items[lo : lo + 8], tiny_model, opts).state
        merged.merge(engine.TopKState.from_dict(shard_state.to_dict()))  # through JSON, as the DB stores it
    assert merged.to_dict() == one_pass.to_dict()
    assert merged.select(fill_incorrect=True) == one_pass.select(fill_incorrect=True)


def test_fill_incorrect_fills_short_classes_by_true_class_probability():
    state = engine.TopKState(k=3)
    state.add("right.jpg", 1, 1, 0.9, 0.9)
    state.add("wrong_low.jpg", 1, 2, 0.8, 0.05)
    state.add("wrong_high.jpg", 1, 3, 0.7, 0.2)
    state.add("wrong_mid.jpg", 1, 3, 0.7, 0.1)
    assert [s.key for s in state.select()[1]] == ["right.jpg"]
    filled = state.select(fill_incorrect=True)[1]
    assert [(s.key, s.filled) for s in filled] == [
        ("right.jpg", False),
        ("wrong_high.jpg", True),
        ("wrong_mid.jpg", True),
    ]
    assert state.short_classes() == {1: 1}


def test_preprocessing_matches_the_weights_eval_transform(jpeg_items):
    import torch

    t = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.transforms()
    pre = engine.Preprocess.from_transform(t)
    for it in jpeg_items[:3]:
        img = PILImage.open(it.path).convert("RGB")
        ours = pre.normalize_batch(pre.resize_crop(img)[None], torch.float32)[0]
        assert torch.allclose(ours, t(img), atol=1e-5)


def test_checkpoint_file_is_loaded_and_its_sha256_recorded(tmp_path, tiny_model):
    import hashlib

    import torch

    ckpt = tmp_path / "r18.pth"
    torch.save({"state_dict": tiny_model.model.state_dict()}, ckpt)
    loaded = engine.load_model(engine.ModelSpec(name="resnet18", weights=None, checkpoint=str(ckpt), image_size=32))
    assert loaded.weights_sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert loaded.weights_id == "checkpoint:r18.pth"
    for a, b in zip(loaded.model.state_dict().values(), tiny_model.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_unloadable_weights_fail_with_a_message_naming_checkpoint(tmp_path, monkeypatch):
    # An empty hub cache and a proxy that refuses connections: the download fails at once,
    # as it does on a machine without network.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(engine.EngineError, match="--checkpoint"):
        engine.load_model(engine.ModelSpec(name="resnet18", weights="IMAGENET1K_V1"))


def test_unknown_model_and_weights_names_are_refused():
    with pytest.raises(engine.EngineError, match="unknown model"):
        engine.load_model(engine.ModelSpec(name="not_a_model"))
    with pytest.raises(engine.EngineError, match="no weights"):
        engine.load_model(engine.ModelSpec(name="resnet18", weights="IMAGENET9K"))
    with pytest.raises(engine.EngineError, match="--checkpoint"):
        engine.load_model(engine.ModelSpec(name="resnet18", weights=None, checkpoint="/nonexistent.pth"))


def test_device_decode_path_matches_the_pil_path_and_routes_odd_files_to_pil(tiny_model, jpeg_items, tmp_path):
    """The GPU path (read bytes, decode_jpeg on the device, grouped resize) exercised on the CPU:
    torchvision's decoder and antialiased resize agree with the PIL path within a few grey levels."""
    import torch

    from tests.prototypes.conftest import write_jpeg

    cmyk = write_jpeg(tmp_path / "cmyk.JPEG", seed=5)
    PILImage.open(cmyk).convert("CMYK").save(cmyk, "JPEG")
    items = [*jpeg_items[:6], engine.Item("cmyk.JPEG", str(cmyk), 1)]
    pre = tiny_model.pre
    ds_raw = engine.ImageItems(items, pre, num_classes=1000, max_pixels=10**8, raw_bytes=True)
    batch = engine.collate([ds_raw[i] for i in range(len(items))])
    assert [i for i, _ in batch.raw] == list(range(6)) and batch.indices == [6]  # CMYK went to PIL
    idx, px, bad = _decode_on_device(
        batch.raw, pre, torch.device("cpu"), lambda i: engine.decode_image(items[i].path, pre, 10**8)
    )
    assert not bad and sorted(idx) == list(range(6))
    for j, i in enumerate(idx):
        ref, _ = engine.decode_image(items[i].path, pre, 10**8)
        assert (px[j].float() - ref.float()).abs().mean() < 3.0


def test_random_weights_and_checkpoints_use_the_classic_v1_transform():
    loaded = engine.load_model(engine.ModelSpec(name="resnet50", weights=None))
    # ResNet-50's DEFAULT weights (V2) resize to 232; the paper's IMAGENET1K_V1 resizes to 256.
    assert (loaded.pre.resize_size, loaded.pre.crop_size) == (256, 224)
