"""JAX/XLA departures from SPEC.md found by `convspec check jax` (jax 0.10.2, CPU); each print shows
what JAX gives, the comment what the spec requires. Run: python docs/upstream-bugs/jax_maxpool_grad_groups_zero_sign.py"""
import jax, jax.numpy as jnp, numpy as np
from jax import lax
jax.config.update("jax_enable_x64", True)
# 1: signed zero in max
x = jnp.array([[[-0.0, 0.0, -0.0]]])
print("1", np.signbit(lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 3), (1, 1, 1), "VALID")))  # spec: [[[True]]]
# 2: NaN window gradient goes to a non-NaN tap
f = lambda a: lax.reduce_window(a, -jnp.inf, lax.max, (1, 1, 3), (1, 1, 1), "VALID")
print("2", jax.vjp(f, jnp.array([[[jnp.nan, 1.0, 2.0]]]))[1](jnp.ones((1, 1, 1))))  # spec: dx at index 0
# 3: all -inf window: gradient lost into padding
g = lambda a: lax.reduce_window(a, -jnp.inf, lax.max, (1, 1, 2), (1, 1, 1), ((0, 0), (0, 0), (1, 0)))
print("3", jax.vjp(g, jnp.array([[[-jnp.inf, -jnp.inf, 1.0]]]))[1](jnp.array([[[1.0, 10.0, 100.0]]])))  # spec: [11, 0, 100]
# 4: grouped conv: inf in group 0 makes group 1 NaN
x = np.array([[[[-np.inf]], [[1.0]]]]); w = np.array([[[[0.5, -0.25]]], [[[1.5, 0.75]]]])
dn = lax.ConvDimensionNumbers((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3))
print("4", lax.conv_general_dilated(x, w, (1, 1), [(0, 0), (1, 1)], feature_group_count=2, dimension_numbers=dn)[0, 1])  # spec: [[0.75 1.5]]
# 5: no VJP for dilated max pool
try:
    jax.vjp(lambda a: lax.reduce_window(a, -jnp.inf, lax.max, (1, 1, 2), (1, 1, 1), "VALID", window_dilation=(1, 1, 2)), jnp.ones((1, 1, 5)))[1](jnp.ones((1, 1, 3)))
except NotImplementedError as e:
    print("5", e)
