"""Bad input never stops a run: each case is skipped or converted, with its reason, and the rest
of its batch is still scored."""

from __future__ import annotations

# The engine needs no database: these also run on the embedded default.
import io

import numpy as np
import pytest
from PIL import Image as PILImage

from prototypes import engine
from prototypes.engine.decode import _to_rgb
from tests.prototypes.conftest import write_jpeg

pytestmark = pytest.mark.embedded


def _jpeg_bytes(seed: int = 0, size=(80, 60)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def bad_items(tmp_path) -> tuple[list[engine.Item], dict[str, str]]:
    """Good images with one bad file of each kind placed in the middle of the same batch."""
    d = tmp_path / "bad"
    d.mkdir()
    good = [write_jpeg(d / f"good_{i}.JPEG", seed=i) for i in range(4)]
    (d / "truncated.JPEG").write_bytes(_jpeg_bytes(1)[:400])
    (d / "garbage.JPEG").write_bytes(b"this is not an image at all" * 10)
    (d / "empty.JPEG").write_bytes(b"")
    big = d / "huge.JPEG"
    PILImage.new("RGB", (2100, 2000), (90, 120, 30)).save(big, quality=50)
    items = [
        engine.Item("good_0.JPEG", str(good[0]), 1),
        engine.Item("truncated.JPEG", str(d / "truncated.JPEG"), 1),
        engine.Item("good_1.JPEG", str(good[1]), 2),
        engine.Item("garbage.JPEG", str(d / "garbage.JPEG"), 2),
        engine.Item("empty.JPEG", str(d / "empty.JPEG"), 2),
        engine.Item("missing.JPEG", str(d / "missing.JPEG"), 3),
        engine.Item("huge.JPEG", str(big), 3),
        engine.Item("bad_label.JPEG", str(good[2]), 1000),  # resnet has classes 0..999
        engine.Item("negative_label.JPEG", str(good[2]), -1),
        engine.Item("good_3.JPEG", str(good[3]), 3),
    ]
    expected = {
        "truncated.JPEG": engine.R_TRUNCATED,
        "garbage.JPEG": engine.R_UNREADABLE,
        "empty.JPEG": engine.R_UNREADABLE,
        "missing.JPEG": engine.R_MISSING,
        "huge.JPEG": engine.R_TOO_LARGE,
        "bad_label.JPEG": engine.R_LABEL,
        "negative_label.JPEG": engine.R_LABEL,
    }
    return items, expected


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "decode-worker"])
def test_bad_files_are_skipped_with_their_reason_and_the_batch_survives(tiny_model, bad_items, workers):
    items, expected = bad_items
    # One batch holds everything; a 4 Mpx limit makes the 4.2 Mpx file "huge".
    opts = engine.ScoreOptions(device="cpu", batch_size=len(items), num_workers=workers, max_pixels=4_000_000)
    seen: list[str] = []
    result = engine.score(items, tiny_model, opts, sink=lambda key, *_: seen.append(key))
    assert sorted(seen) == ["good_0.JPEG", "good_1.JPEG", "good_3.JPEG"]
    assert result.scored == 3
    assert {s.key: engine.reason_kind(s.reason) for s in result.skipped} == expected


def test_huge_jpeg_under_the_limit_is_decoded_at_reduced_scale(tiny_model, tmp_path):
    p = tmp_path / "big.JPEG"
    PILImage.new("RGB", (3000, 2000), (200, 10, 10)).save(p, quality=60)
    tensor, note = engine.decode_image(str(p), tiny_model.pre, max_pixels=10_000_000)
    assert tensor is not None and tuple(tensor.shape) == (3, 32, 32)
    assert note == engine.C_DRAFT


def test_pillow_decompression_bomb_is_skipped_not_raised(tiny_model, tmp_path, monkeypatch):
    p = tmp_path / "bomb.JPEG"
    PILImage.new("RGB", (1000, 1000)).save(p)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100_000)  # Pillow errors above 2x this
    tensor, reason = engine.decode_image(str(p), tiny_model.pre, max_pixels=10**9)
    assert tensor is None and engine.reason_kind(reason) == engine.R_TOO_LARGE


@pytest.mark.parametrize(
    ("mode", "note"),
    [
        ("L", engine.C_GRAYSCALE),
        ("CMYK", engine.C_CMYK),
        ("RGBA", engine.C_ALPHA),
        ("LA", engine.C_ALPHA),
        ("P", engine.C_PALETTE),
        ("I;16", engine.C_GRAYSCALE),
    ],
)
def test_non_rgb_images_are_converted_scored_and_counted(tiny_model, tmp_path, mode, note):
    p = tmp_path / f"img_{mode.replace(';', '')}.JPEG"
    if mode == "I;16":
        p = p.with_suffix(".png")
        arr = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20
        PILImage.fromarray(arr).save(p)
    elif mode == "CMYK":
        write_jpeg(p, seed=3).exists()
        PILImage.open(p).convert("CMYK").save(p, "JPEG")
    else:
        p = write_jpeg(p, seed=3, mode=mode)
    items = [engine.Item(p.name, str(p), 1)]
    result = engine.score(items, tiny_model, engine.ScoreOptions(device="cpu", num_workers=0))
    assert result.scored == 1 and not result.skipped
    assert result.notes == {note: 1}


def test_alpha_is_flattened_on_white():
    rgba = PILImage.new("RGBA", (4, 4), (0, 0, 0, 0))  # fully transparent black
    rgb, note = _to_rgb(rgba)
    assert note == engine.C_ALPHA and rgb.getpixel((0, 0)) == (255, 255, 255)


def test_malformed_predictions_rows_are_skipped_with_line_numbers(tmp_path):
    p = tmp_path / "preds.csv"
    p.write_text(
        "file_name,predicted_class,predicted_probability\na.JPEG,1,0.9\nb.JPEG,x,0.5\nc.JPEG,2,1.5\nd.JPEG,2,0.4\n"
    )
    state, skipped = engine.state_from_predictions(engine.read_predictions(p), {"a.JPEG": 1, "d.JPEG": 2}, k=3)
    assert sum(state.scored.values()) == 2
    assert [(s.key, s.reason.split(":")[0]) for s in skipped] == [
        ("b.JPEG", "bad predictions row (line 3)"),
        ("c.JPEG", "bad predictions row (line 4)"),
    ]


def test_predictions_file_without_the_required_columns_is_refused(tmp_path):
    p = tmp_path / "preds.csv"
    p.write_text("name,cls\na,1\n")
    with pytest.raises(engine.EngineError, match="missing column"):
        list(engine.read_predictions(p))


def test_device_decode_path_scores_good_files_and_skips_bad_ones_with_the_same_reasons(tiny_model, bad_items):
    """decode="device" (nvjpeg on a GPU) run here with torchvision's CPU decoder: the same files
    are scored and the same bad files skipped, truncated ones through the PIL fallback."""
    items, expected = bad_items
    opts = engine.ScoreOptions(
        device="cpu", batch_size=len(items), num_workers=1, max_pixels=4_000_000, decode="device"
    )
    seen: list[str] = []
    result = engine.score(items, tiny_model, opts, sink=lambda key, *_: seen.append(key))
    assert result.resolved["decode"] == "device"
    assert sorted(seen) == ["good_0.JPEG", "good_1.JPEG", "good_3.JPEG"]
    assert {s.key: engine.reason_kind(s.reason) for s in result.skipped} == expected
