"""The `folder` adapter: ROOT/<group>/<images> read with Pillow, and one-line errors for bad data."""

import json

import numpy as np
import pytest
from PIL import Image

from guda_bench.cli import main
from guda_bench.errors import BenchError
from guda_bench.registry import DATASETS
from guda_bench.runner import make_adapter


def write_groups(root, groups=("cats", "dogs", "owls"), n=4, mode="L", size=(11, 13)):
    rng = np.random.default_rng(0)
    for g in groups:
        (root / g).mkdir(parents=True)
        for i in range(n):
            shape = size[::-1] + ((3,) if mode == "RGB" else ())
            arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(arr, mode=mode).save(root / g / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_reads_any_size_and_format_resized_to_the_preset(tmp_path):
    root = write_groups(tmp_path / "data", mode="RGB")
    adapter = make_adapter("folder", root)
    bench = adapter.load(adapter.preset("smoke"))
    assert bench.images.shape == (12, 3, 8, 8) and bench.preset.model.in_channels == 3
    assert bench.group_names == ["cats", "dogs", "owls"] and np.bincount(bench.group_of).tolist() == [4, 4, 4]
    assert bench.images.min() >= -1 and bench.images.max() <= 1


@pytest.mark.parametrize("setup, message", [
    (lambda r: None, "does not exist"),
    (lambda r: (r / "only").mkdir(parents=True), "at least two"),
    (lambda r: (write_groups(r), (r / "empty").mkdir()), "group 'empty'"),
    (lambda r: (write_groups(r), (r / "dogs" / "broken.png").write_bytes(b"not a png")), "broken.png"),
    (lambda r: (write_groups(r, ("a", "b")), write_groups(r, ("c",), mode="RGB")), "mixed channel counts"),
])
def test_bad_data_is_one_line_naming_the_culprit(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    adapter = make_adapter("folder", root)
    with pytest.raises(BenchError, match=message):
        if not adapter.available()[0]:
            raise BenchError(adapter.available()[1])
        adapter.load(adapter.preset("smoke"))


def test_missing_data_path_from_the_cli_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "--dataset", "folder", "--data-root", str(tmp_path / "nowhere"), "--preset", "smoke",
                 "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nowhere does not exist" in err
    assert "folder" in DATASETS.names()
    code = main(["run", "--dataset", "digits", "--data-root", str(tmp_path), "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2 and "reads no local files" in capsys.readouterr().err


def test_folder_run_end_to_end(tmp_path):
    root = write_groups(tmp_path / "data")
    out = tmp_path / "run"
    code = main(["run", "--dataset", "folder", "--data-root", str(root), "--preset", "smoke", "--method",
                 "logo,pixel-nn,guda", "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["groups"] == ["cats", "dogs", "owls"] and res["run"]["data_root"] == str(root)
    assert {r["status"] for r in res["rows"]} == {"ok"}
