"""guda-bench: which groups of training data made this generated image?

A benchmark suite for group-wise training data attribution in diffusion models. See
docs/architecture.md for the data path and README.md for the quickstart.
"""

__version__ = "0.1.0"

from guda_bench.errors import BenchError, Unavailable  # noqa: E402
from guda_bench.method import Method  # noqa: E402
from guda_bench.options import Option  # noqa: E402
from guda_bench.registry import register_dataset, register_method  # noqa: E402

__all__ = ["BenchError", "Method", "Option", "Unavailable", "__version__", "register_dataset", "register_method"]
