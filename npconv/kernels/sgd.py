"""One step of plain stochastic gradient descent (Robbins & Monro 1951), no momentum, no
weight decay, as `torch.optim.SGD(params, lr)`:

    param = param - lr * grad

in the parameter's dtype, element by element.

Counts: sgd_updates, one per parameter element (a multiply and a subtract).
"""

from numba import njit


@njit(cache=True)
def sgd_step(param, grad, lr):
    # param, grad: (L,)   a parameter and its gradient, flattened; param updated in place
    # lr: a scalar of param's dtype
    updates = 0
    for k in range(param.shape[0]):
        param[k] = param[k] - lr * grad[k]
        updates += 1
    return updates
