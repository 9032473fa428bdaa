"""Reference channel shuffle (Zhang et al. 2018, ShuffleNet, Sec. 3.1).

With C channels in g groups of C/g, view the channels as a (g, C/g) matrix, transpose it
and flatten it back: output channel j*g + i takes input channel i*(C/g) + j. After a
grouped convolution this hands every next group one channel from each previous group.

    y[n, j * g + i, l] = x[n, i * (C / g) + j, l]      i < g, j < C / g

Counts: shuffle_copies, one per element copied.
"""

from numba import njit


@njit(cache=True)
def channel_shuffle(x, y, groups):
    # x, y: (N, C, L)   L = the product of the spatial sizes; y overwritten
    N, C, L = x.shape
    per_group = C // groups
    copies = 0
    for n in range(N):
        for i in range(groups):
            for j in range(per_group):
                for l in range(L):
                    y[n, j * groups + i, l] = x[n, i * per_group + j, l]
                    copies += 1
    return copies
