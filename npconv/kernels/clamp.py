"""Reference clamp, serving PyTorch's clamp(x, min, max) and hardtanh(x, min_val, max_val):

    y = min(max(x, low), high)        (only the limits given: has_low, has_high)

made as PyTorch makes it: first `if x < low: x = low`, then `if x > high: x = high`, each
comparison executed only for a limit that exists. Consequences, all as in torch.clamp:
NaN stays NaN (both comparisons are false); a value equal to a limit is kept, so -0.0 stays
-0.0 against a limit of 0.0; with low > high every output is high (the second comparison
wins). A NaN limit makes every output NaN and no comparison is made (PyTorch fills the
output with NaN when either scalar limit is NaN).

Counts: activation_compares, one per executed comparison (one per element and limit).
"""

from numba import njit


@njit(cache=True)
def clamp(x, low, high, has_low, has_high, y):
    # x, y: (L,)   the input and output flattened; y overwritten
    # low, high: scalars of x's dtype, read only when has_low / has_high
    compares = 0
    if (has_low and low != low) or (has_high and high != high):
        nan = low if (has_low and low != low) else high
        for k in range(x.shape[0]):
            y[k] = nan
        return compares
    for k in range(x.shape[0]):
        value = x[k]
        if has_low:
            if value < low:
                value = low
            compares += 1
        if has_high:
            if value > high:
                value = high
            compares += 1
        y[k] = value
    return compares
