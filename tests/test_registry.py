"""Registries: decorator, variants, did-you-mean, resolve_methods, and real entry-point plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from guda_bench.errors import BenchError
from guda_bench.method import Method
from guda_bench.registry import Registry, resolve_methods

ALL_BUILTIN_METHODS = {"logo", "guda", "guda-clipped", "guda-reference", "unlearn-retain-only", "unlearn-ga",
                       "pixel-cosine", "pixel-nn", "random"}


@pytest.fixture
def registry() -> Registry:
    return Registry("method", (), "guda_bench.test_group_that_does_not_exist")


def test_decorator_registers_and_create_sets_name(registry: Registry) -> None:
    @registry.register("dummy", description="a dummy method")
    class Dummy(Method):
        def __init__(self, scale: float = 1.0) -> None:
            self.scale = scale

    assert registry.names() == ["dummy"]
    entry = registry.entry("dummy")
    assert entry.cls is Dummy
    assert entry.description == "a dummy method"
    assert entry.source == "builtin"
    obj = registry.create("dummy")
    assert isinstance(obj, Dummy)
    assert obj.name == "dummy"
    assert obj.scale == 1.0
    assert registry.load_errors == {}


def test_stacked_decorators_make_variants(registry: Registry) -> None:
    @registry.register("variant-a", scale=2.0)
    @registry.register("variant-b", scale=3.0, mode="nn", description="the b variant")
    class Variant(Method):
        """First docstring line is the default description.

        More text.
        """

        def __init__(self, scale: float = 1.0, mode: str = "mean") -> None:
            self.scale = scale
            self.mode = mode

    assert registry.names() == ["variant-a", "variant-b"]
    a, b = registry.create("variant-a"), registry.create("variant-b")
    assert type(a) is Variant and type(b) is Variant
    assert (a.name, a.scale, a.mode) == ("variant-a", 2.0, "mean")
    assert (b.name, b.scale, b.mode) == ("variant-b", 3.0, "nn")
    assert registry.entry("variant-a").options == {"scale": 2.0}
    assert registry.entry("variant-b").options == {"scale": 3.0, "mode": "nn"}
    assert registry.entry("variant-a").description == "First docstring line is the default description."
    assert registry.entry("variant-b").description == "the b variant"
    # each create gives a fresh object; the class attribute is untouched
    assert registry.create("variant-a") is not a
    assert Variant.name == ""
    assert [e.name for e in registry.entries()] == ["variant-a", "variant-b"]


def test_unknown_name_did_you_mean(registry: Registry) -> None:
    @registry.register("pixel-cosine")
    class Dummy(Method):
        pass

    with pytest.raises(BenchError) as info:
        registry.entry("pixel-cosin")
    msg = str(info.value)
    assert "did you mean" in msg
    assert "'pixel-cosine'" in msg
    assert "\n" not in msg
    with pytest.raises(BenchError) as info:
        registry.create("zzzzzzzzzzzz")
    assert "did you mean" not in str(info.value)
    assert "pixel-cosine" in str(info.value)  # the known names are listed


def test_duplicate_name_different_class_raises(registry: Registry) -> None:
    @registry.register("dup")
    class First(Method):
        pass

    class Second(Method):
        pass

    with pytest.raises(BenchError, match="twice"):
        registry.register("dup")(Second)
    assert registry.entry("dup").cls is First
    # re-registering the same class (e.g. a module imported twice) is fine
    registry.register("dup")(First)
    assert registry.entry("dup").cls is First


def test_resolve_methods_all_includes_builtins() -> None:
    names = resolve_methods("all")
    assert ALL_BUILTIN_METHODS <= set(names)
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert resolve_methods("  all ") == names


def test_resolve_methods_list() -> None:
    assert resolve_methods("guda,logo,guda") == ["guda", "logo"]
    assert resolve_methods(" random , pixel-nn ,") == ["random", "pixel-nn"]


@pytest.mark.parametrize("spec", [" , ", "", ",,"])
def test_resolve_methods_empty_raises(spec: str) -> None:
    with pytest.raises(BenchError):
        resolve_methods(spec)


def test_resolve_methods_unknown_raises() -> None:
    with pytest.raises(BenchError, match="did you mean.*'guda'"):
        resolve_methods("logo,gudaa")


# --- real entry-point plugins, in a subprocess with the plugin folder on PYTHONPATH ----------------------

# The built-in method modules import torch and diffusers (many seconds on a busy CPU); the plugin tests
# only need the entry-point path, so the child skips the built-ins.
CHILD_PRELUDE = "from guda_bench.registry import METHODS\nMETHODS.builtin_modules = ()\n"


def write_plugin(root: Path, package: str, dist: str, body: str, entry_name: str,
                 group: str = "guda_bench.methods") -> None:
    (root / package).mkdir()
    (root / package / "__init__.py").write_text(textwrap.dedent(body))
    info = root / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry_name} = {package}\n")


def run_child(code: str, pythonpath: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60, cwd=pythonpath)


def test_entry_point_plugin_is_registered(tmp_path: Path) -> None:
    write_plugin(tmp_path, "gb_test_plugin", "gb-test-plugin", """
        import numpy as np

        from guda_bench import Method, register_method


        @register_method("tmp-plugin-method")
        class Zeros(Method):
            \"\"\"All-zero scores.\"\"\"

            def score(self, ctx):
                return np.zeros((2, 3))
        """, "tmp-plugin-method")
    proc = run_child("""
        assert "tmp-plugin-method" in METHODS.names(), METHODS.names()
        entry = METHODS.entry("tmp-plugin-method")
        assert entry.source == "gb-test-plugin", entry.source
        assert entry.description == "All-zero scores.", entry.description
        m = METHODS.create("tmp-plugin-method")
        assert m.name == "tmp-plugin-method"
        assert m.score(None).shape == (2, 3) and not m.score(None).any()
        assert METHODS.load_errors == {}, METHODS.load_errors
        print("OK")
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"


def test_broken_plugin_recorded_not_fatal(tmp_path: Path) -> None:
    write_plugin(tmp_path, "gb_broken_plugin", "gb-broken-plugin", """
        raise ImportError("this plugin is broken on purpose")
        """, "tmp-broken-method")
    proc = run_child("""
        names = METHODS.names()
        assert "tmp-broken-method" not in names, names
        assert "tmp-broken-method" in METHODS.load_errors, METHODS.load_errors
        err = METHODS.load_errors["tmp-broken-method"]
        assert "ImportError" in err and "broken on purpose" in err, err
        assert METHODS.names() == names  # loading is not retried or repeated
        print("OK")
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"


def test_guda_bench_list_shows_a_dataset_plugin_that_failed_to_load(tmp_path: Path) -> None:
    write_plugin(tmp_path, "gb_broken_dataset", "gb-broken-dataset", """
        raise ImportError("this dataset plugin is broken on purpose")
        """, "tmp-broken-dataset", group="guda_bench.datasets")
    proc = run_child("""
        import os
        os.environ["COLUMNS"] = "300"  # one table row a line
        from guda_bench.cli import main
        assert main(["list"]) == 0
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = next((line for line in proc.stdout.splitlines() if "tmp-broken-dataset" in line), "")
    assert "plugin failed to load" in row and "broken on purpose" in row, proc.stdout


def test_score_of_plugin_style_method_is_plain_numpy() -> None:
    # a plugin author's minimal method works with the base class contract
    class Zeros(Method):
        def score(self, ctx):
            return np.zeros((1, 1))

    assert Zeros().score(None).shape == (1, 1)
    assert Zeros().describe_settings() == {}
    with pytest.raises(NotImplementedError):
        Method().score(None)
