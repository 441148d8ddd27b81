"""Tests for ``project.data``: sources, splits, loaders, caching, augmentation and user errors.

CIFAR is tested on small generated files in torchvision's pickle format (checksums bypassed), so
nothing is downloaded; the real ``../shared/data/cifar10-mini`` tree is used when present.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from project.data import (
    augment_batch,
    crop_flip,
    make_datamodule,
    make_synthetic,
    normalize_batch,
    split_indices,
)
from project.data import folder as folder_mod
from project.data.cifar import CIFAR10_CLASSES
from project.errors import UserError

MINI = (Path(__file__).parents[1] / "../shared/data/cifar10-mini").resolve()
PER_BATCH = 50  # images per fake CIFAR file
TRAIN_MAX = 200  # train pixels stay below this; test images carry 255 as a signature


# ---------------------------------------------------------------------------- helpers
def _stub_trainer(training: bool) -> SimpleNamespace:
    return SimpleNamespace(
        training=training, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )


def _images(n: int, rng: np.random.Generator, test: bool) -> np.ndarray:
    """Fake CIFAR rows ``(n, 3072)`` uint8; test rows contain the value 255, train rows never."""
    data = rng.integers(0, TRAIN_MAX, size=(n, 3072), dtype=np.uint8)
    if test:
        data[:, :8] = 255
    return data


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def single_thread():
    """Tiny tensor ops gain nothing from intra-op threads, and on a busy 2-core machine OpenMP
    barriers waiting for a descheduled thread made the training loop below ~10x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def no_checksum(monkeypatch):
    """The fake files have the wrong md5s: skip torchvision's integrity checks (tests only)."""
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


@pytest.fixture
def fake_cifar10(tmp_path, no_checksum) -> Path:
    rng = np.random.default_rng(0)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for i in range(1, 6):
        labels = rng.integers(0, 10, PER_BATCH).tolist()
        _dump(
            base / f"data_batch_{i}",
            {
                "batch_label": f"training batch {i} of 5",
                "labels": labels,
                "data": _images(PER_BATCH, rng, False),
                "filenames": [f"{j}.png" for j in range(PER_BATCH)],
            },
        )
    _dump(
        base / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": rng.integers(0, 10, PER_BATCH).tolist(),
            "data": _images(PER_BATCH, rng, True),
            "filenames": [f"{j}.png" for j in range(PER_BATCH)],
        },
    )
    _dump(
        base / "batches.meta",
        {"num_cases_per_batch": PER_BATCH, "num_vis": 3072, "label_names": list(CIFAR10_CLASSES)},
    )
    return tmp_path


@pytest.fixture
def fake_cifar100(tmp_path, no_checksum) -> Path:
    rng = np.random.default_rng(1)
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    for name, n, test in (("train", 5 * PER_BATCH, False), ("test", PER_BATCH, True)):
        fine = rng.integers(0, 100, n).tolist()
        _dump(
            base / name,
            {
                "filenames": [f"{j}.png" for j in range(n)],
                "batch_label": name,
                "fine_labels": fine,
                "coarse_labels": [f // 5 for f in fine],
                "data": _images(n, rng, test),
            },
        )
    _dump(
        base / "meta",
        {
            "fine_label_names": [f"fine{i}" for i in range(100)],
            "coarse_label_names": [f"coarse{i}" for i in range(20)],
        },
    )
    return tmp_path


def _write_tree(root: Path, classes=("blue", "green", "red"), n_train=8, n_test=3) -> Path:
    """ImageFolder tree of solid-colour PNGs; class i has channel (2 - i) set to 200 + i."""
    for split, n in (("train", n_train), ("test", n_test)):
        for i, cls in enumerate(classes):
            d = root / split / cls
            d.mkdir(parents=True)
            for j in range(n):
                arr = np.full((32, 32, 3), j, dtype=np.uint8)
                arr[..., 2 - i] = 200 + i
                Image.fromarray(arr).save(d / f"{j:03d}.png")
    return root


def _all_batches(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


# ---------------------------------------------------------------------------- CIFAR
def test_cifar10_splits_shapes_and_test_isolation(fake_cifar10):
    dm = make_datamodule("cifar10", root=str(fake_cifar10), batch_size=16, val_size=50)
    assert dm.num_classes == 10 and dm.class_names[0] == "airplane"
    dm.prepare_data()
    dm.setup("fit")
    assert dm.split_sizes == {"train": 200, "val": 50, "test": 50}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.train_eval_dataloader()):
        images, _ = _all_batches(loader)
        assert images.max() < TRAIN_MAX, "a test image reached a train/val loader"
    test_images, _ = _all_batches(dm.test_dataloader())
    assert test_images.shape[0] == 50 and bool((test_images == 255).any(dim=(1, 2, 3)).all())
    assert len(list(dm.train_dataloader())) == 13  # 200 / 16, last batch kept (drop_last=False)


def test_cifar100_fraction_val_and_meta_names(fake_cifar100):
    dm = make_datamodule("cifar100", root=str(fake_cifar100), val_size=0.2, download=False)
    assert dm.num_classes == 100 and dm.class_names[3] == "fine3"
    dm.setup("fit")
    assert dm.split_sizes == {"train": 200, "val": 50, "test": 50}
    images, labels = _all_batches(dm.train_dataloader())
    assert images.max() < TRAIN_MAX and int(labels.max()) < 100


def test_cifar100_names_without_files(tmp_path):
    dm = make_datamodule("cifar100", root=str(tmp_path))
    assert dm.num_classes == 100 and dm.class_names[0] == "class_0"


def test_real_cifar_default_split_sizes():
    train_idx, val_idx = split_indices(50_000, 10000, seed=0)
    assert (len(train_idx), len(val_idx)) == (40_000, 10_000)
    assert torch.equal(torch.cat([train_idx, val_idx]).sort().values, torch.arange(50_000))
    again, _ = split_indices(50_000, 10000, seed=0)
    other, _ = split_indices(50_000, 10000, seed=1)
    assert torch.equal(train_idx, again) and not torch.equal(train_idx, other)


def test_cifar_download_failure_is_user_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    dm = make_datamodule("cifar10", root=str(tmp_path))
    with pytest.raises(UserError) as err:
        dm.prepare_data()
    msg = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg and "cifar-10-python.tar.gz" in msg
    assert "data=synthetic" in msg and "data=folder data.root=../shared/data/cifar10-mini" in msg
    with pytest.raises(UserError, match="data=synthetic"):
        make_datamodule("cifar10", root=str(tmp_path), download=False).setup("fit")


# ---------------------------------------------------------------------------- folder
def test_folder_tree_labels_and_cache(tmp_path, monkeypatch):
    root = _write_tree(tmp_path / "imgs")
    dm = make_datamodule("folder", root=str(root), val_size=6, batch_size=4)
    assert dm.class_names == ["blue", "green", "red"] and dm.num_classes == 3
    dm.prepare_data()
    dm.setup("fit")
    assert dm.split_sizes == {"train": 18, "val": 6, "test": 9}
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        images, labels = _all_batches(loader)
        # Each class's marker channel identifies the label assigned by sorted folder name.
        marker = images[torch.arange(len(labels)), 2 - labels, 0, 0]
        assert torch.equal(marker.long(), 200 + labels)
    cache_files = sorted(p.name for p in (root / ".cache").glob("*.pt"))
    assert len(cache_files) == 2 and cache_files[0].startswith("test-")

    # A second module must load from the cache without decoding a single file.
    def no_decode(*args, **kwargs):
        raise AssertionError("decoded although a valid cache exists")

    monkeypatch.setattr(folder_mod, "decode_files", no_decode)
    dm2 = make_datamodule("folder", root=str(root), val_size=6)
    dm2.setup("fit")
    assert dm2.split_sizes == dm.split_sizes
    # Modifying the tree invalidates the cache key, so the new file is decoded.
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "train" / "red" / "new.png")
    with pytest.raises(AssertionError, match="decoded although"):
        make_datamodule("folder", root=str(root), val_size=6).setup("fit")


def test_cache_dir_falls_back_for_read_only_root(tmp_path, monkeypatch):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    try:
        assert folder_mod.default_cache_dir(root) == tmp_path / "home/.cache/normres/folders"
    finally:
        root.chmod(0o755)
    assert folder_mod.default_cache_dir(tmp_path) == tmp_path / ".cache"


@pytest.mark.skipif(not MINI.is_dir(), reason="../shared/data/cifar10-mini not present")
def test_folder_cifar10_mini(tmp_path):
    dm = make_datamodule("folder", root=str(MINI), val_size=0.1, cache_dir=str(tmp_path))
    assert dm.num_classes == 10 and dm.class_names[0] == "airplane"
    dm.setup("fit")
    sizes = dm.split_sizes
    assert sizes["train"] + sizes["val"] == 4068 and sizes["test"] == 1017
    start = time.perf_counter()
    make_datamodule("folder", root=str(MINI), cache_dir=str(tmp_path), val_size=0.1).setup("fit")
    assert time.perf_counter() - start < 2.0, "cached setup should be near-instant"


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        make_datamodule("folder", root=str(tmp_path / "nope"))
    (tmp_path / "half" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="no test/"):
        make_datamodule("folder", root=str(tmp_path / "half"))
    (tmp_path / "half" / "test").mkdir()
    with pytest.raises(UserError, match="no class subfolders"):
        make_datamodule("folder", root=str(tmp_path / "half"))
    (tmp_path / "one" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "one" / "test").mkdir()
    with pytest.raises(UserError, match="at least two"):
        make_datamodule("folder", root=str(tmp_path / "one"))
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / "empty" / split / cls).mkdir(parents=True)
    dm = make_datamodule("folder", root=str(tmp_path / "empty"), val_size=1)
    with pytest.raises(UserError, match="no images"):
        dm.setup("fit")


def test_folder_bad_image_names_file(tmp_path):
    root = _write_tree(tmp_path / "imgs")
    (root / "train" / "red" / "broken.png").write_bytes(b"this is not a png")
    dm = make_datamodule("folder", root=str(root), val_size=2, cache=False)
    with pytest.raises(UserError, match="broken.png"):
        dm.setup("fit")


def test_folder_val_size_too_large(tmp_path):
    root = _write_tree(tmp_path / "imgs")
    dm = make_datamodule("folder", root=str(root), val_size=24)
    with pytest.raises(UserError, match=r"data\.val_size=24.*0 < val_size < 24"):
        dm.setup("fit")


# ---------------------------------------------------------------------------- explicit inputs
def test_eval_splits_and_loaders_follow_the_constructor():
    kwargs = dict(val_size=20, train_size=100, test_size=30, eval_batch_size=16)
    dm = make_datamodule("synthetic", eval_splits=("train", "val", "test"), **kwargs)
    dm.setup("test")
    sizes = [sum(len(y) for _, y in loader) for loader in dm.test_dataloader()]
    assert dm.eval_splits == ("train", "val", "test") and sizes == [80, 20, 30]
    val, train = dm.eval_dataloaders(["val", "train"])  # fixed order, eval batch size
    assert torch.equal(torch.cat([y for _, y in train]), dm._splits["train"][1])
    assert next(iter(val))[0].shape[0] == 16
    single = make_datamodule("synthetic", **kwargs)
    single.setup("test")
    assert single.eval_splits == ("test",) and len(single.test_dataloader()) == 2  # batches


def test_stats_argument_replaces_the_train_statistics():
    trained = make_datamodule("synthetic", val_size=20, train_size=100, test_size=10)
    trained.setup("fit")
    stats = trained.data_stats
    assert stats["normalize"] == "train" and stats["dataset"] == "synthetic"
    assert stats["mean"] == [float(v) for v in trained.mean] and len(stats["std"]) == 3
    # Other data normalised as the network was trained: the given numbers, not its own.
    other = make_datamodule(
        "synthetic", val_size=5, train_size=50, test_size=10, seed=7, normalize="none", stats=stats
    )
    other.setup("test")
    assert other.normalize == "train" and other.data_stats["mean"] == stats["mean"]
    x = other._splits["test"][0]
    expected = normalize_batch(x.float() / 255, torch.tensor(stats["mean"]), trained.std)
    assert torch.allclose(other.transform_batch(x, train=False), expected, atol=1e-6)
    raw = make_datamodule("synthetic", val_size=5, train_size=50, stats={"normalize": "none"})
    raw.setup("test")
    x = raw._splits["test"][0]
    assert torch.equal(raw.transform_batch(x, train=False), x.float() / 255)


@pytest.mark.parametrize("source", ["cifar10", "cifar100", "folder", "synthetic"])
def test_each_data_config_builds_its_own_source(source, tmp_path):
    from hydra.utils import instantiate

    from project.data import dataset_name, validate_data_config
    from project.training.compose import compose_job_config

    root = _write_tree(tmp_path / "imgs") if source == "folder" else tmp_path
    root_override = [f"data.root={root}"] if source != "synthetic" else []
    cfg = compose_job_config([f"data={source}", *root_override])
    validate_data_config(cfg.data)
    dm = instantiate(cfg.data)
    assert dataset_name(cfg.data) == dm.name == dm.dataset == source
    assert (source in ("cifar10", "cifar100")) == ("download" in cfg.data)  # no CIFAR-only keys
    # instantiate passed every key: the base takes no **kwargs, so a foreign key is a TypeError


# ---------------------------------------------------------------------------- augmentation
def test_crop_flip_matches_per_image_reference():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 32, 32), generator=gen, dtype=torch.uint8)
    offsets = torch.tensor([[0, 0], [8, 8], [4, 4], [1, 7], [8, 0], [3, 5]])
    flips = torch.tensor([False, True, False, True, True, False])
    out = crop_flip(x, offsets, flips, padding=4)
    for i in range(6):
        ref = torch.nn.functional.pad(x[i], (4, 4, 4, 4))
        ref = ref[:, offsets[i, 0] : offsets[i, 0] + 32, offsets[i, 1] : offsets[i, 1] + 32]
        if flips[i]:
            ref = torch.flip(ref, dims=[-1])
        assert torch.equal(out[i], ref)
    assert torch.equal(out[2], x[2])  # centre crop, no flip = identity


def test_augment_batch_is_seeded_and_float():
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    a = augment_batch(x, torch.Generator().manual_seed(3))
    b = augment_batch(x, torch.Generator().manual_seed(3))
    assert a.dtype == torch.float32 and a.shape == x.shape and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_normalization_and_transfer_hook(fake_cifar10):
    dm = make_datamodule("cifar10", root=str(fake_cifar10), val_size=50, batch_size=32)
    dm.setup("fit")
    images, labels = dm._splits["train"]
    z = dm.transform_batch(images, train=False)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    manual = normalize_batch(images.float() / 255, dm.mean, dm.std)
    assert torch.allclose(z, manual, atol=1e-6)

    batch = next(iter(dm.train_dataloader()))
    dm.trainer = _stub_trainer(training=False)
    evaluated, y = dm.on_after_batch_transfer(batch, 0)
    assert evaluated.dtype == torch.float32 and torch.equal(y, batch[1])
    assert torch.allclose(evaluated, normalize_batch(batch[0].float() / 255, dm.mean, dm.std))
    dm.trainer = _stub_trainer(training=True)
    augmented, _ = dm.on_after_batch_transfer(batch, 0)
    assert augmented.shape == evaluated.shape and not torch.allclose(augmented, evaluated)


def test_train_loader_is_seeded_per_epoch():
    def first_labels(seed: int, epoch: int) -> torch.Tensor:
        dm = make_datamodule("synthetic", val_size=100, train_size=300, test_size=10, seed=seed)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return next(iter(loader))[1]

    assert torch.equal(first_labels(0, 0), first_labels(0, 0))
    assert not torch.equal(first_labels(0, 0), first_labels(0, 1))


# ---------------------------------------------------------------------------- synthetic
def test_synthetic_deterministic_and_balanced():
    a, la = make_synthetic(500, seed=7)
    b, lb = make_synthetic(500, seed=7)
    c, _ = make_synthetic(500, seed=8)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)
    assert a.shape == (500, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.bincount(la, minlength=10).tolist() == [50] * 10


def test_synthetic_is_learnable(single_thread):
    dm = make_datamodule("synthetic", val_size=200, train_size=2000, test_size=500)
    assert dm.num_classes == 10 and dm.class_names[0] == "disc"
    dm.setup("fit")
    x_train, y_train = dm._splits["train"]
    x_test, y_test = dm._splits["test"]
    feats = dm.transform_batch(x_train, train=False).flatten(1)
    feats_test = dm.transform_batch(x_test, train=False).flatten(1)
    torch.manual_seed(0)
    model = torch.nn.Linear(feats.shape[1], 10)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-3)
    for _ in range(150):
        idx = torch.randint(0, len(y_train), (128,))
        loss = torch.nn.functional.cross_entropy(model(feats[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    accuracy = (model(feats_test).argmax(1) == y_test).float().mean().item()
    assert accuracy > 0.4, f"linear probe accuracy {accuracy:.2f} too close to chance"


# ---------------------------------------------------------------------------- Lightning
def test_fit_one_step_with_lightning():
    import lightning as L

    seen = {}

    class Toy(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3 * 32 * 32, 10)

        def training_step(self, batch, batch_idx):
            x, y = batch
            seen["dtype"], seen["shape"] = x.dtype, tuple(x.shape)
            return torch.nn.functional.cross_entropy(self.layer(x.flatten(1)), y)

        def validation_step(self, batch, batch_idx):
            seen["val_dtype"] = batch[0].dtype

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = make_datamodule("synthetic", val_size=20, train_size=100, test_size=10, batch_size=8)
    trainer = L.Trainer(
        fast_dev_run=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Toy(), datamodule=dm)
    assert seen == {"dtype": torch.float32, "shape": (8, 3, 32, 32), "val_dtype": torch.float32}


# ---------------------------------------------------------------------------- option errors
def test_option_errors():
    with pytest.raises(UserError, match="Valid datasets are cifar10, cifar100, folder, synthetic"):
        make_datamodule("imagenet")
    with pytest.raises(UserError, match=r"data\.batch_size=0"):
        make_datamodule("synthetic", batch_size=0, val_size=100)
    for bad in (0, -5, 1.5, 0.0, True):
        with pytest.raises(UserError, match=r"data\.val_size=.*0 < val_size < train size"):
            make_datamodule("synthetic", val_size=bad)
    with pytest.raises(UserError, match=r"data\.val_size=50000.*0 < val_size < 50000"):
        make_datamodule("cifar10", val_size=50_000)
    with pytest.raises(UserError, match=r"data\.val_size=2000.*0 < val_size < 2000"):
        make_datamodule("synthetic", val_size=2000, train_size=2000)
    with pytest.raises(UserError, match="data.normalize"):
        make_datamodule("synthetic", val_size=100, normalize="imagenet")
