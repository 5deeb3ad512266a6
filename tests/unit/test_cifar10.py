"""The CIFAR-10 reader: both pickle key styles, the md5 flag, and clear errors for bad files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from benchsuite.data import cifar10
from benchsuite.data.synthetic_cifar import write_cifar_layout
from benchsuite.errors import DataError


def _tiny_arrays(n_train: int = 50, n_test: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    tx = rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8)
    ty = np.arange(n_train) % 10
    sx = rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8)
    sy = np.arange(n_test) % 10
    return tx, ty, sx, sy


def _write_str_keys(folder: Path, tx, ty, sx, sy) -> None:
    """The same layout pickled by Python 3 with str keys (protocol 4)."""
    folder.mkdir(parents=True)

    def rows(x):
        return x.transpose(0, 3, 1, 2).reshape(len(x), -1)

    for i, part in enumerate(np.array_split(np.arange(len(ty)), 5)):
        (folder / f"data_batch_{i + 1}").write_bytes(
            pickle.dumps({"data": rows(tx[part]), "labels": ty[part].tolist()}, protocol=4))
    (folder / "test_batch").write_bytes(pickle.dumps({"data": rows(sx), "labels": sy.tolist()}, protocol=4))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(cifar10.CLASSES)}, protocol=4))


@pytest.mark.parametrize("style", ["bytes", "str"])
def test_reads_both_key_styles_and_plane_layout(tmp_path, style):
    tx, ty, sx, sy = _tiny_arrays()
    folder = tmp_path / cifar10.FOLDER
    if style == "bytes":
        write_cifar_layout(folder, tx, ty, sx, sy, cifar10.CLASSES)
    else:
        _write_str_keys(folder, tx, ty, sx, sy)
    a = cifar10.read_cifar10(folder)
    np.testing.assert_array_equal(a.train_images, tx)  # R, G, B planes back to HWC
    np.testing.assert_array_equal(a.train_labels, ty)
    np.testing.assert_array_equal(a.test_images, sx)
    np.testing.assert_array_equal(a.test_labels, sy)
    assert a.classes == cifar10.CLASSES
    assert not a.canonical  # our files are not the canonical release


def test_canonical_flag_follows_md5(tmp_path, monkeypatch):
    tx, ty, sx, sy = _tiny_arrays()
    folder = write_cifar_layout(tmp_path / cifar10.FOLDER, tx, ty, sx, sy, cifar10.CLASSES)
    digests = {name: cifar10.md5_of(folder / name) for name in cifar10.CANONICAL_MD5}
    monkeypatch.setattr(cifar10, "CANONICAL_MD5", digests)
    assert cifar10.read_cifar10(folder).canonical
    digests = dict(digests, test_batch="0" * 32)
    monkeypatch.setattr(cifar10, "CANONICAL_MD5", digests)
    assert not cifar10.read_cifar10(folder).canonical


def test_fingerprint_changes_with_content(tmp_path):
    tx, ty, sx, sy = _tiny_arrays()
    a = write_cifar_layout(tmp_path / "a" / cifar10.FOLDER, tx, ty, sx, sy, cifar10.CLASSES)
    b = write_cifar_layout(tmp_path / "b" / cifar10.FOLDER, tx, ty, sx, sy, cifar10.CLASSES)
    sx2 = sx.copy()
    sx2[0, 0, 0, 0] ^= 1
    c = write_cifar_layout(tmp_path / "c" / cifar10.FOLDER, tx, ty, sx2, sy, cifar10.CLASSES)
    fa, fb, fc = (cifar10.read_cifar10(p).fingerprint for p in (a, b, c))
    assert fa == fb != fc


def test_truncated_batch_is_a_clear_error(tmp_path):
    tx, ty, sx, sy = _tiny_arrays()
    folder = write_cifar_layout(tmp_path / cifar10.FOLDER, tx, ty, sx, sy, cifar10.CLASSES)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=r"data_batch_3: truncated"):
        cifar10.read_cifar10(folder)


def test_missing_batch_names_the_file(tmp_path):
    tx, ty, sx, sy = _tiny_arrays()
    folder = write_cifar_layout(tmp_path / cifar10.FOLDER, tx, ty, sx, sy, cifar10.CLASSES)
    (folder / "data_batch_5").unlink()
    with pytest.raises(DataError, match=r"data_batch_5: missing"):
        cifar10.read_cifar10(folder)


def test_wrong_pickle_is_refused(tmp_path):
    tx, ty, sx, sy = _tiny_arrays()
    folder = write_cifar_layout(tmp_path / cifar10.FOLDER, tx, ty, sx, sy, cifar10.CLASSES)
    (folder / "data_batch_2").write_bytes(pickle.dumps(["not", "a", "batch"]))
    with pytest.raises(DataError, match=r"data_batch_2: holds a list"):
        cifar10.read_cifar10(folder)
    # a pickle that would import arbitrary code is refused before anything runs
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": Path("x")}))
    with pytest.raises(DataError, match=r"data_batch_2: unreadable .*refusing to load"):
        cifar10.read_cifar10(folder)


def test_bad_shapes_and_labels(tmp_path):
    tx, ty, sx, sy = _tiny_arrays()
    folder = write_cifar_layout(tmp_path / cifar10.FOLDER, tx, ty, sx, sy, cifar10.CLASSES)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}))
    with pytest.raises(DataError, match=r"test_batch: 'data' is uint8 \(4, 100\)"):
        cifar10.read_cifar10(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}))
    with pytest.raises(DataError, match=r"labels outside 0..9"):
        cifar10.read_cifar10(folder)
