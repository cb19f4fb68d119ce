"""The fused edge-type messages (the CPU fast path) against their plain definition.

`fused_messages.aggregated_messages` must compute exactly what `EdgeTypeMessages` defines with
plain autodiff, in values and in gradients with respect to every input and parameter.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nri_jax import fused_messages
from nri_jax.decoders import EdgeTypeMessages, MLPDecoder, use_fused

N, F, H = 4, 3, 8
E = N * (N - 1)
GRAPHS = 7  # a prime number of graphs: chunks can only hold 1 or all 7


def _inputs(edge_types, seed=0):
    kx, kz = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (GRAPHS, N, F))
    z = jax.nn.softmax(jax.random.normal(kz, (GRAPHS, E, edge_types)), axis=-1)
    return x, z


def _value_and_grads(
    implementation, edge_types, skip_first, activation, project_nodes, dtype=jnp.float32
):
    module = EdgeTypeMessages(
        edge_types,
        H,
        activation,
        skip_first,
        project_nodes=project_nodes,
        aggregate=True,
        implementation=implementation,
        dtype=dtype,
    )
    x, z = _inputs(edge_types)
    params = module.init(jax.random.key(1), x, z)["params"]

    def loss(params, x, z):
        out = module.apply({"params": params}, x, z)  # [graphs, N, H]
        return jnp.sum(jnp.sin(out) * jnp.arange(H))  # a cotangent that differs per unit

    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, x, z)
    return value, grads


_close = functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("chunks", ["one", "several"])
@pytest.mark.parametrize("skip_first", [False, True])
@pytest.mark.parametrize("edge_types", [2, 4])
def test_fused_equals_plain_values_and_gradients(edge_types, skip_first, chunks, monkeypatch):
    if chunks == "several":  # one graph's activations per chunk: 7 chunks
        monkeypatch.setattr(fused_messages, "CHUNK_ELEMENTS", E * H)
        x, z = _inputs(edge_types)
        assert fused_messages.chunking(x, z, H)[0].shape[:2] == (GRAPHS, 1)
    else:
        x, z = _inputs(edge_types)
        assert fused_messages.chunking(x, z, H)[0].shape[:2] == (1, GRAPHS)
    # relu without node projection is the MLP decoder's; tanh with it the RNN decoder's.
    for activation, project_nodes in (("relu", False), ("tanh", True)):
        args = (edge_types, skip_first, activation, project_nodes)
        plain = _value_and_grads("plain", *args)
        fused = _value_and_grads("fused", *args)
        jax.tree.map(_close, fused, plain)
        # The gradients are not trivially zero; with skip_first type 0 gets none at all.
        kernel2 = plain[1][0]["kernel2"]
        assert np.all(np.abs(kernel2[int(skip_first) :]).max(axis=(1, 2)) > 0)
        if skip_first:
            np.testing.assert_array_equal(fused[1][0]["kernel2"][0], 0)


@pytest.mark.parametrize("skip_first", [False, True])
def test_fused_equals_plain_in_bfloat16(skip_first, monkeypatch):
    """Both round the same float32 operands and cotangents to bfloat16 and accumulate in
    float32, in another order; a sum that lands on the other side of a bfloat16 rounding
    boundary moves one operand by 2^-8, so values agree to that relative to each array's scale."""
    monkeypatch.setattr(fused_messages, "CHUNK_ELEMENTS", E * H)  # several chunks
    for activation, project_nodes in (("relu", False), ("tanh", True)):
        args = (2, skip_first, activation, project_nodes, jnp.bfloat16)
        plain = _value_and_grads("plain", *args)
        fused = _value_and_grads("fused", *args)
        assert {leaf.dtype for leaf in jax.tree.leaves(fused)} == {jnp.dtype(jnp.float32)}
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, atol=2.0**-8 * np.abs(b).max()),
            fused,
            plain,
        )
        reference = _value_and_grads("plain", *args[:-1])  # float32
        assert not np.array_equal(plain[0], reference[0])  # bfloat16 did run


def test_fused_messages_broadcast_edges_over_restarts():
    """The MLP decoder passes z `[B, 1, E, K]` for x `[B, S, N, F]`: z's cotangent sums."""
    x = jax.random.normal(jax.random.key(0), (2, 3, N, F))
    z = jax.nn.softmax(jax.random.normal(jax.random.key(1), (2, 1, E, 2)), axis=-1)
    results = []
    for implementation in ("plain", "fused"):
        module = EdgeTypeMessages(2, H, aggregate=True, implementation=implementation)
        params = module.init(jax.random.key(2), x, z)["params"]
        grad = jax.grad(lambda z, m=module, p=params: jnp.sum(m.apply({"params": p}, x, z) ** 2))(z)
        results.append(grad)
    assert results[1].shape == z.shape
    _close(results[1], results[0])


def test_unrolled_chunked_decoder_equals_the_plain_one(monkeypatch):
    """What wide decoders get: several chunks per step and the M-step loop unrolled."""
    x = jax.random.normal(jax.random.key(0), (2, N, 10, F))
    z = jax.nn.softmax(jax.random.normal(jax.random.key(1), (2, E, 3)), axis=-1)

    def value_and_grads(implementation):
        module = MLPDecoder(3, H, implementation=implementation)
        params = module.init(jax.random.key(2), x, z, 1)["params"]

        def loss(params, x, z):
            return jnp.sum(jnp.sin(module.apply({"params": params}, x, z, 3)))

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, x, z)

    plain = value_and_grads("plain")
    # 2 samples x 3 restarts = 6 graphs; 2 graphs per chunk -> 3 chunks, unrolled from 3.
    monkeypatch.setattr(fused_messages, "CHUNK_ELEMENTS", 2 * E * H)
    monkeypatch.setattr(fused_messages, "UNROLL_MIN_CHUNKS", 3)
    assert fused_messages.step_unroll(3, 6, N, H) == 3
    jax.tree.map(_close, value_and_grads("fused"), plain)


def test_forward_mode_through_the_plain_path():
    x = jax.random.normal(jax.random.key(0), (2, N, 6, F))
    z = jax.nn.softmax(jax.random.normal(jax.random.key(1), (2, E, 2)), axis=-1)
    module = MLPDecoder(2, H, implementation="plain")
    params = module.init(jax.random.key(2), x, z, 1)["params"]
    f = lambda x: module.apply({"params": params}, x, z, 2)  # noqa: E731
    tangent = jax.random.normal(jax.random.key(3), x.shape)
    _, jvp = jax.jvp(f, (x,), (tangent,))
    # Against reverse mode: <J t, c> = <t, J^T c>.
    cotangent = jax.random.normal(jax.random.key(4), jvp.shape)
    (vjp,) = jax.vjp(f, x)[1](cotangent)
    np.testing.assert_allclose(jnp.vdot(jvp, cotangent), jnp.vdot(tangent, vjp), rtol=1e-4)


def test_default_implementation_is_fused_on_cpu_only():
    assert use_fused(None) == (jax.default_backend() == "cpu")
    assert use_fused("fused") and not use_fused("plain")
    with pytest.raises(ValueError, match="config.model.messages"):
        use_fused("fast")


def test_graphs_per_chunk_is_the_divisor_nearest_the_target():
    # A 50-object sample's 5 rollout starts at 64 units: 2.6 graphs fill a chunk. The nearest
    # divisor of 5 by ratio is 5 (one chunk), not 1 (five one-graph chunks).
    edges, hidden = 50 * 49, 64
    target = fused_messages.CHUNK_ELEMENTS / (edges * hidden)
    assert 2.5 < target < 2.7
    assert fused_messages.graphs_per_chunk(5, edges, hidden) == 5
    for graphs in (1, 5, 12, 40, 97, 640):
        chosen = fused_messages.graphs_per_chunk(graphs, edges, hidden)
        assert graphs % chosen == 0
        others = [d for d in range(1, graphs + 1) if graphs % d == 0]
        assert all(abs(np.log(chosen / target)) <= abs(np.log(d / target)) for d in others)
