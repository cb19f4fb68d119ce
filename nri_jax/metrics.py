"""Edge metrics: accuracy, raw and under the best relabelling of the unsupervised edge
types, and the AUROC of the interaction probabilities (StructInfer's headline, REFERENCE.md §8).

The accuracy functions return arrays (no host syncs), so they run inside jitted evaluation
steps; the AUROC ranks a whole split's scores on the host, in numpy.
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


def interaction_scores(probs: np.ndarray, permutation: list[int] | np.ndarray) -> np.ndarray:
    """The probability of any interaction, 1 - p(no interaction), per edge `[...]`.

    probs: q(z|x) `[..., K]`. Label 0 means no interaction (the data's type 0); the predicted
    type read as label 0 is the one `permutation` (from `best_permutation`: type p read as
    label perm[p]) maps there, so unsupervised types are matched as for the accuracy.
    """
    no_interaction = int(np.flatnonzero(np.asarray(permutation) == 0)[0])
    return 1.0 - np.asarray(probs, np.float64)[..., no_interaction]


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values` `[n]`, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]  # each run of equal values starts here
    starts = np.flatnonzero(first)
    stops = np.r_[starts[1:], len(values)]
    # Ranks starts + 1 .. stops of a run average to (starts + 1 + stops) / 2.
    ranks = np.empty(len(values), np.float64)
    ranks[order] = ((starts + 1 + stops) / 2)[np.cumsum(first) - 1]
    return ranks


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counted
    one half; NaN if either class is empty.

    The Mann-Whitney statistic from average ranks (tied scores share the mean of their ranks):
    (sum of the positives' ranks - P (P + 1) / 2) / (P Q) for P positives, Q negatives.
    scores, positive: any shape, flattened together; positive is boolean.
    """
    scores = np.asarray(scores, np.float64).ravel()
    positive = np.asarray(positive, bool).ravel()
    if scores.shape != positive.shape:
        raise ValueError(f"scores {scores.shape} and positive {positive.shape} differ")
    num_pos = int(positive.sum())
    num_neg = positive.size - num_pos
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    ranks = average_ranks(scores)
    return float((ranks[positive].sum() - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg))
