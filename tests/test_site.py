"""The static leaderboard site: built from real published boards, checked as files and in a headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from guda_bench.cli import main
from tests.tiny_dataset import NAME, register

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    register()
    root = tmp_path_factory.mktemp("site")
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(root / "cache"), "--quiet",
                 "--ceiling-seeds", "2", "--method", "logo,pixel-cosine,random,clip", "--out", str(root / "run")]) == 0
    assert main(["leaderboard", "publish", str(root / "run"), "--dir", str(root / "boards")]) == 0
    assert main(["leaderboard", "site", "--dir", str(root / "boards"), "--out", str(root / "site")]) == 0
    return root


def test_every_link_and_image_of_the_site_resolves(site: Path) -> None:
    out = site / "site"
    pages = sorted(out.glob("*.html"))
    assert {p.name for p in pages} == {"index.html", f"{NAME}.html"}
    for page in pages:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text  # no CDN, nothing from outside
        for ref in re.findall(r"(?:href|src)='([^']+)'", text):
            assert (out / ref).is_file(), (page.name, ref)
    board = (out / f"{NAME}.html").read_text()
    assert board.count("<img") == 3 and "power: n_test" in board and "no CLIP weights" in board
    assert "guda-bench run" in board  # the command that reproduces it, as a reader types it


def test_the_site_renders_in_a_headless_browser(site: Path) -> None:
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no headless Chromium here (.ci/run installs Debian's chromium-headless-shell)")
    page = site / "site" / f"{NAME}.html"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--virtual-time-budget=3000"]
    shot = site / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()], check=True,
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    board = pd.read_csv(site / "boards" / f"{NAME}.csv")
    body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr") == len(board)  # one row per method (and the ceiling)
    assert 'class="missing"' not in dom  # the page's script marks any image the browser could not load
    assert "class=\"ceiling\"" in body.split("<tr", 2)[1] or "class='ceiling'" in dom
