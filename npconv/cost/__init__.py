"""What a model costs, counted and predicted: the closed forms (formulas/), the per-layer
summary of a forward pass held against them and FlopCounterMode (summary.py), and the
backward pass's cost table (backward.py). The counts themselves come from the kernels'
loops through npconv.counting."""
