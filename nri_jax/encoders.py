"""Encoders q(z|x) (section 3.1): trajectories -> edge-type logits on the complete graph.

Both return float32 logits `[batch, edges, edge_types]`, edges in `graph.fully_connected`
order; q(z_ij|x) = softmax(logits). The number of objects is read from the inputs. `dtype` is
the matmul operand dtype (`nri_jax.precision`).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from nri_jax.graph import edge_to_node, fully_connected, node_to_edge
from nri_jax.layers import MLP, AttentionCNN, encoder_dense


def _edge_stages(
    skip: jax.Array,
    num_objects: int,
    train: bool,
    hidden: int,
    edge_types: int,
    dropout: float,
    factor: bool,
    names: tuple[str, str],
    dtype: Any,
) -> jax.Array:
    """Both encoders' message passing from the first edge embedding h^1_(i,j) `skip` on.

    factor=True (eqs. 7-8): e->v as the mean over incoming edges (the original divides the sum
    by N), a node MLP, v->e, then concat with the skip and an edge MLP. factor=False: an edge MLP
    in place of the e->v->e round trip. Ends with the Linear H -> K logits. Called inside the
    caller's compact method, so the layers (named as in the original, `names`) are the caller's.
    """
    receivers, _ = fully_connected(num_objects)
    first, last = names
    if factor:
        x = edge_to_node(skip, receivers, num_objects) / num_objects  # eq. 7
        x = MLP(hidden, hidden, dropout, dtype=dtype, name=first)(x, train)
        # eq. 8: v->e, concat with the skip, edge MLP; the v->e half of its first layer per node.
        x = MLP(hidden, hidden, dropout, pairs=True, dtype=dtype, name=last)(x, train, skip=skip)
    else:
        x = MLP(hidden, hidden, dropout, dtype=dtype, name=first)(skip, train)
        x = jnp.concatenate([x, skip], axis=-1)
        x = MLP(hidden, hidden, dropout, dtype=dtype, name=last)(x, train)
    return encoder_dense(edge_types, "fc_out", dtype)(x)


class MLPEncoder(nn.Module):
    """MLP encoder (eqs. 5-8): `[batch, objects, time, dims]` -> logits `[batch, edges, K]`."""

    hidden: int = 256
    edge_types: int = 2
    dropout: float = 0.0
    factor: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
        num_objects = inputs.shape[1]
        mlp = functools.partial(MLP, self.hidden, self.hidden, self.dropout, dtype=self.dtype)
        x = inputs.reshape(inputs.shape[:2] + (-1,))  # each trajectory flattened over time
        x = mlp(name="mlp1")(x, train)  # eq. 5
        # eq. 6: v->e and the edge MLP, its first layer per node.
        skip = mlp(pairs=True, name="mlp2")(x, train)
        settings = (self.hidden, self.edge_types, self.dropout, self.factor)
        return _edge_stages(skip, num_objects, train, *settings, ("mlp3", "mlp4"), self.dtype)


class CNNEncoder(nn.Module):
    """CNN encoder: f_emb on edges is a 1D CNN over the pair's trajectories, then eqs. 6-8.

    `[batch, objects, time, dims]` -> logits `[batch, edges, K]`; needs time >= 14.
    """

    hidden: int = 256
    edge_types: int = 2
    dropout: float = 0.0
    factor: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
        batch, num_objects, time, dims = inputs.shape
        receivers, senders = fully_connected(num_objects)
        # Per edge, sender and receiver trajectories as 2D channels over time: [B*E, T, 2D].
        pairs = node_to_edge(jnp.swapaxes(inputs, 1, 2), senders, receivers)  # [B, T, E, 2D]
        pairs = jnp.swapaxes(pairs, 1, 2).reshape(-1, time, 2 * dims)
        cnn = AttentionCNN(self.hidden, self.hidden, self.dropout, self.dtype, name="cnn")
        x = cnn(pairs, train).reshape(batch, -1, self.hidden)
        skip = MLP(self.hidden, self.hidden, self.dropout, dtype=self.dtype, name="mlp1")(x, train)
        settings = (self.hidden, self.edge_types, self.dropout, self.factor)
        return _edge_stages(skip, num_objects, train, *settings, ("mlp2", "mlp3"), self.dtype)
