"""The template's own test: the guda-bench method contract, on guda-bench's tiny built-in benchmark."""

import guda_bench_plugin_template  # noqa: F401  (registers the method, as the entry point does when installed)

from guda_bench.testing import check_method


def test_template_keeps_the_method_contract(tmp_path):
    report = check_method("template-centroid", workdir=tmp_path)
    assert report.ok, report.text()
