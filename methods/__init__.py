"""Built-in attribution methods (installed as guda_bench.methods). One file per method; none imports another."""
