"""The fully connected interaction graph and message passing over it (eqs. 6-8, 10-11, 13-14).

The complete graph without self-loops has E = N(N-1) directed edges, ordered row-major over
the off-diagonal pairs (i, j) of an N x N matrix; edge (i, j) has receiver i and sender j. This
one order is used everywhere: the original's `rel_rec` / `rel_send` one-hot matrices, the edge
labels read from its `edges_*.npy` files (`nri_jax.original_format`), the encoders' logits, the
decoders' messages, the simulation decoder's interaction matrix and the plots (REFERENCE.md §2).

Node-to-edge is a gather (or static slices), edge-to-node a segment sum: O(E) work, where the
original's dense one-hot [E, N] matmuls cost O(E N).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def fully_connected(num_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """`(receivers, senders)`, each int32 [edges], of the complete graph without self-loops.

    Row-major over (i, j), i != j: receivers = 0 0 .. 1 1 .. (sorted), senders = 1 2 .. 0 2 ...
    """
    receivers, senders = np.nonzero(~np.eye(num_objects, dtype=bool))
    return receivers.astype(np.int32), senders.astype(np.int32)


def outgoing_edges(num_objects: int) -> np.ndarray:
    """[N, N - 1]: the indices of each object's outgoing edges (it is their sender).

    In `fully_connected` order edge (i, j) has index i (N - 1) + j - [j > i], so sender j's
    edges, to receivers i != j in increasing order, come in closed form: O(N^2), no search.
    """
    n = num_objects
    receivers = np.arange(n)[None, :].repeat(n, 0)  # [sender, slot]
    receivers = receivers[~np.eye(n, dtype=bool)].reshape(n, n - 1)  # row j: all i != j
    senders = np.arange(n)[:, None]
    return (receivers * (n - 1) + senders - (senders > receivers)).astype(np.int32)


def matrix_to_edges(matrix: jax.Array | np.ndarray) -> jax.Array | np.ndarray:
    """`[..., N, N]` (row = receiver, column = sender) -> `[..., E]`: the off-diagonal entries.

    Returns a numpy array for numpy input (data loading), a jax array for jax input.
    """
    receivers, senders = fully_connected(matrix.shape[-1])
    return matrix[..., receivers, senders]


def edges_to_matrix(
    values: jax.Array | np.ndarray, num_objects: int, diagonal: float = 0.0
) -> jax.Array:
    """`[..., E]` -> `[..., N, N]` (row = receiver, column = sender), `diagonal` on the diagonal.

    The inverse of `matrix_to_edges`; differentiable (the simulation decoder's weights).
    """
    values = jnp.asarray(values)
    receivers, senders = fully_connected(num_objects)
    shape = values.shape[:-1] + (num_objects, num_objects)
    matrix = jnp.full(shape, diagonal, values.dtype)
    return matrix.at[..., receivers, senders].set(values)


def node_to_edge(x: jax.Array, senders: np.ndarray, receivers: np.ndarray) -> jax.Array:
    """v->e (eqs. 6, 8, 10): `[..., objects, F]` -> `[..., edges, 2F]` = [x_sender, x_receiver]."""
    return jnp.concatenate(
        [jnp.take(x, senders, axis=-2), jnp.take(x, receivers, axis=-2)], axis=-1
    )


def sender_rows(nodes: jax.Array) -> jax.Array:
    """`[..., N, F]` -> `[..., E, F]`: each edge's sender row, in `fully_connected` order.

    The same as `jnp.take(nodes, senders, axis=-2)`. Edges run row-major over the off-diagonal
    (i, j) of N x N, sender j: broadcast to all N^2 pairs, then drop the diagonal (flat index
    i (N + 1)) by a shift and a reshape. These static slices fuse into the consumer; the gather
    made XLA:CPU write the rows edge-major and then transpose them (docs/benchmarks.md).
    """
    *lead, n, size = nodes.shape
    pairs = jnp.broadcast_to(nodes[..., None, :, :], (*lead, n, n, size))
    pairs = pairs.reshape(*lead, n * n, size)[..., 1:, :].reshape(*lead, n - 1, n + 1, size)
    return pairs[..., :n, :].reshape(*lead, n * (n - 1), size)


def receiver_rows(nodes: jax.Array) -> jax.Array:
    """`[..., N, F]` -> `[..., E, F]`: each edge's receiver row (receivers come sorted)."""
    *lead, n, size = nodes.shape
    rows = jnp.broadcast_to(nodes[..., :, None, :], (*lead, n, n - 1, size))
    return rows.reshape(*lead, n * (n - 1), size)


def edge_to_node(e: jax.Array, receivers: np.ndarray, num_objects: int) -> jax.Array:
    """e->v (eqs. 7, 11, 14): sum over incoming edges, `[..., edges, F]` -> `[..., objects, F]`.

    A plain sum; the encoder and the RNN decoder divide by N themselves, as the original does.
    """
    receivers = np.asarray(receivers)
    in_degree = len(receivers) // num_objects
    if np.array_equal(receivers, np.repeat(np.arange(num_objects), in_degree)):
        # Incoming edges are contiguous and equally many (the `fully_connected` order): the
        # segment sum is a reshape and a sum, which XLA fuses with the producer of `e`; a
        # scatter on the CPU costs a transpose and a serial loop.
        return e.reshape(e.shape[:-2] + (num_objects, in_degree, e.shape[-1])).sum(axis=-2)
    summed = jax.ops.segment_sum(
        jnp.moveaxis(e, -2, 0),  # segment_sum reduces the leading axis
        jnp.asarray(receivers),
        num_segments=num_objects,
        indices_are_sorted=bool(np.all(receivers[1:] >= receivers[:-1])),
    )
    return jnp.moveaxis(summed, 0, -2)
