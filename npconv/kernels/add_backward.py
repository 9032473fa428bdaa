"""Gradient of a residual connection, y = x + F(x) (He et al. 2016; MobileNetV2's inverted
residual block).

The add itself, y = a + b, passes gy unchanged to both operands (dy/da = dy/db = 1): no
arithmetic. The work is at the fork: x feeds both the shortcut and the branch F, so its
gradient is the sum of the two that come back,

    gx = gy + gF      gF = dL/dx through the branch (F's backward applied to gy)

one add per element.

Counts: residual_grad_adds, one per element.
"""

from numba import njit


@njit(cache=True)
def residual_add_backward(gy, g_branch, gx):
    # gy, g_branch, gx: (L,)   dL/dy, dL/dx through the branch, and dL/dx; flattened, gx overwritten
    adds = 0
    for k in range(gy.shape[0]):
        gx[k] = gy[k] + g_branch[k]
        adds += 1
    return adds
