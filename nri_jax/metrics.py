"""Edge accuracy, raw and under the best relabelling of the unsupervised edge types.

All return arrays (no host syncs), so they run inside jitted evaluation steps.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np


def edge_accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of edges whose argmax type equals the label.

    logits `[..., edges, K]`, labels `[..., edges]` (integer types).
    """
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def confusion_matrix(
    logits: jax.Array, labels: jax.Array, edge_types: int, mask: jax.Array | None = None
) -> jax.Array:
    """Counts `[K, K]`: entry [p, l] = number of edges predicted type p with label l.

    logits `[batch, edges, K]`, labels `[batch, edges]`; `mask` `[batch]` weights the samples
    (0 for the padding of a last, partial batch).
    """
    predicted = jax.nn.one_hot(jnp.argmax(logits, axis=-1), edge_types)
    if mask is not None:
        predicted = predicted * mask.reshape(mask.shape + (1,) * (predicted.ndim - 1))
    actual = jax.nn.one_hot(labels, edge_types)
    return jnp.einsum("...p,...l->pl", predicted, actual)


def best_permutation(confusion: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(accuracy, permutation)`: the relabelling (type p read as label perm[p]) agreeing most.

    confusion: counts `[K, K]` as from `confusion_matrix`. Scores all K! permutations at once
    (fine for the K <= 4 of the paper's experiments).
    """
    edge_types = confusion.shape[0]
    perms = np.array(list(itertools.permutations(range(edge_types))), dtype=np.int32)  # [P, K]
    scores = confusion[np.arange(edge_types), perms].sum(axis=-1)  # [P]
    best = jnp.argmax(scores)
    return scores[best] / jnp.sum(confusion), jnp.asarray(perms)[best]


def edge_accuracy_best_permutation(
    logits: jax.Array, labels: jax.Array, edge_types: int
) -> tuple[jax.Array, jax.Array]:
    """`(accuracy, permutation)`: edge accuracy under the best relabelling of predicted types.

    Unsupervised edge types have no fixed identity, so the paper's accuracy is taken under the
    best permutation; perm[p] is the label that predicted type p stands for.
    """
    return best_permutation(confusion_matrix(logits, labels, edge_types))
