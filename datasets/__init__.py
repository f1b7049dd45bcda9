"""Dataset adapters (installed as guda_bench.datasets). One file per dataset."""
