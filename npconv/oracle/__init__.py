"""npconv as an oracle for PyTorch: the rounding-error bounds of every op (bounds.py), the
tolerance helpers for property tests (tolerance.py), the node-by-node verification of a
model (verify.py, over npconv.graph) and the seeded PyTorch twins of npconv's models
(twins.py, twins_shufflenet.py). The Hypothesis strategies are in npconv.strategies."""
