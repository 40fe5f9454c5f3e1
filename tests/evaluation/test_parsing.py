"""Every bad predictions file gets a clear error naming the line; arrays are never unpickled."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from evaluation.parsing import PredictionFileError, parse_array_file, parse_csv

pytestmark = pytest.mark.embedded
HEAD = "file_name,predicted_class,predicted_probability\n"


def refused(data: bytes, **kw) -> PredictionFileError:
    with pytest.raises(PredictionFileError) as info:
        parse_csv(data, n_classes=1000, **kw)
    return info.value


def test_a_good_file_with_extra_columns_and_top5_parses():
    p = parse_csv(
        (HEAD.strip() + ",top5,note\na.jpg,3,0.5,3 1 2 4 5,x\nb.jpg,7,1,7 0 1 2 3,y\n").encode(), n_classes=1000
    )
    assert p.predicted_class.tolist() == [3, 7] and p.top5.shape == (2, 5) and len(p) == 2


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("name,cls\na.jpg,1\n", 1, "header"),
        ("a.jpg,1,0.5\n", 1, "header"),
        (HEAD + "a.jpg,1,0.5\nb.jpg,2,0.5\na.jpg,3,0.5\n", 4, "appears again"),
        (HEAD + "a.jpg,1,0.5\nb.jpg,1000,0.5\n", 3, "out of range"),
        (HEAD + "a.jpg,-1,0.5\n", 2, "out of range"),
        (HEAD + "a.jpg,1,0.5\nb.jpg,2,1.5\n", 3, "[0, 1]"),
        (HEAD + "a.jpg,1,nan\n", 2, "NaN"),
        (HEAD + "a.jpg,x,0.5\n", 2, "not a class index"),
        (HEAD + "a.jpg,1,0.5\n\nb.jpg,2,0.5\n", 3, "empty"),
        (HEAD + "a.jpg,1\n", 2, "fields"),
        (HEAD + ",1,0.5\n", 2, "file_name"),
    ],
)
def test_bad_rows_name_their_line(body, line, words):
    err = refused(body.encode())
    assert f"Line {line}" in err.message and words in err.message


def test_non_utf8_names_the_line():
    err = refused(HEAD.encode() + b"a.jpg,1,0.5\n\xff\xfe.jpg,2,0.5\n")
    assert err.code == "not_utf8" and "Line 3" in err.message


def test_empty_and_header_only_files_are_refused():
    assert refused(b"").code == "empty_file"
    assert refused(HEAD.encode()).code == "empty_file"


def test_a_file_over_the_limit_says_the_limit():
    err = refused((HEAD + "a.jpg,1,0.5\n" * 200).encode(), max_bytes=1024 * 1024 // 1024)
    assert err.code == "file_too_large" and "limit" in err.message


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_logits_give_top1_probability_and_top5():
    logits = np.random.default_rng(0).normal(size=(4, 1000)).astype(np.float32)
    p = parse_array_file(npz(file_names=np.array(["a", "b", "c", "d"]), logits=logits), n_classes=1000)
    assert p.predicted_class.tolist() == logits.argmax(1).tolist()
    assert (p.top5[:, 0] == p.predicted_class).all() and np.all(p.probability <= 1)


def test_npz_object_arrays_are_refused_never_unpickled():
    data = npz(file_names=np.array(["a", "b"], dtype=object), logits=np.zeros((2, 1000)))
    with pytest.raises(PredictionFileError, match="never unpickled|cannot be read without unpickling"):
        parse_array_file(data, n_classes=1000)


def test_a_pickle_upload_is_not_an_array_file():
    with pytest.raises(PredictionFileError):
        parse_array_file(pickle.dumps({"model": "x", "logits": np.zeros((2, 1000))}), n_classes=1000)


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"logits": np.zeros((2, 1000))}, "file_names"),
        ({"file_names": np.array(["a", "b"])}, "logits"),
        ({"file_names": np.array(["a", "b"]), "logits": np.zeros((2, 10))}, "columns"),
        ({"file_names": np.array(["a", "a"]), "logits": np.zeros((2, 1000))}, "appears again"),
        ({"file_names": np.array(["a", "b"]), "probabilities": np.full((2, 1000), 2.0)}, "outside [0, 1]"),
        ({"file_names": np.array(["a", "b"]), "logits": np.full((2, 1000), np.nan)}, "NaN"),
    ],
)
def test_bad_arrays_are_refused_clearly(arrays, words):
    with pytest.raises(PredictionFileError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_array_file(npz(**arrays), n_classes=1000)


def test_non_utf8_deep_in_a_large_file_names_its_line():
    rows = "".join(f"img_{i:06d}.jpg,{i % 1000},0.5\n" for i in range(5000)).encode()
    err = refused(HEAD.encode() + rows + b"bad\xff.jpg,1,0.5\n")
    assert err.code == "not_utf8" and "Line 5002" in err.message
