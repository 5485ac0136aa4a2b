"""A plain NumPy 2-D convolution, turned into a convspec backend in a few lines.

Check it against the spec with::

    convspec check examples/my_conv.py:backend

or from Python: ``convspec.backends.load("examples/my_conv.py:backend")``.
"""

import numpy as np

from convspec.backends import PADDING_MODE_FEATURES, FunctionBackend


def my_conv2d(x, w, stride=(1, 1), pad=(0, 0)):
    """y[n, o, i, j] = Σ_c Σ_{q_i, q_j} w[o, c, q_i, q_j] · x_pad[n, c, i·s_i + q_i, j·s_j + q_j].

    x is (N, C, H, W), w is (O, C, K_i, K_j); ``pad`` zeros on both sides of each spatial dim.
    Cross-correlation (no kernel flip), like every deep-learning framework.
    """
    (s_i, s_j), (p_i, p_j) = stride, pad
    k_i, k_j = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (p_i, p_i), (p_j, p_j)))
    o_i = (x_pad.shape[2] - k_i) // s_i + 1
    o_j = (x_pad.shape[3] - k_j) // s_j + 1
    y = np.zeros((x.shape[0], w.shape[0], o_i, o_j), dtype=x.dtype)
    for q_i in range(k_i):  # loop over the few kernel taps, vectorise over everything else
        for q_j in range(k_j):
            window = x_pad[:, :, q_i : q_i + (o_i - 1) * s_i + 1 : s_i, q_j : q_j + (o_j - 1) * s_j + 1 : s_j]
            y += np.einsum("ncij,oc->noij", window, w[:, :, q_i, q_j])
    return y


def conv(x, w, b, params):
    """convspec's calling convention: arrays, then the spec's ConvParams (pads are explicit)."""
    y = my_conv2d(x, w, stride=params.stride, pad=[before for before, _ in params.pads])
    return y if b is None else y + b[:, None, None]


backend = FunctionBackend(
    "my_conv2d",
    conv=conv,
    ranks={2},
    unsupported={
        "asymmetric_padding": "my_conv2d pads both sides of a dim equally",
        "groups": "my_conv2d has no groups",
        "dilation": "my_conv2d has no dilation",
        **dict.fromkeys(PADDING_MODE_FEATURES, "my_conv2d pads with zeros only"),
    },
)
