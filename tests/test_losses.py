"""Gumbel-softmax sampling, the loss terms, the edge accuracy and AUROC, against hand-computed
values."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nri_jax import gumbel, losses, metrics


def test_gumbel_max_frequencies_follow_softmax():
    # argmax(logits + g) ~ Categorical(softmax(logits)): the property eq. 9 relaxes.
    logits = jnp.log(jnp.array([0.2, 0.5, 0.3]))
    samples = gumbel.gumbel_softmax(jax.random.key(0), jnp.tile(logits, (20000, 1)), tau=0.5)
    np.testing.assert_allclose(samples.sum(-1), 1.0, rtol=1e-5)
    frequencies = np.bincount(np.argmax(samples, -1), minlength=3) / 20000
    np.testing.assert_allclose(frequencies, [0.2, 0.5, 0.3], atol=0.015)


def test_hard_gumbel_is_exactly_one_hot_with_soft_gradient():
    key = jax.random.key(1)
    logits = jax.random.normal(jax.random.key(2), (4, 6, 3))
    hard = gumbel.gumbel_softmax(key, logits, tau=0.5, hard=True)
    soft = gumbel.gumbel_softmax(key, logits, tau=0.5, hard=False)
    assert set(np.unique(np.asarray(hard))) == {0.0, 1.0}
    np.testing.assert_array_equal(hard.sum(-1), 1.0)
    np.testing.assert_array_equal(np.argmax(hard, -1), np.argmax(soft, -1))
    # Straight-through: the gradient is the soft sample's.
    weights = jax.random.normal(jax.random.key(3), (4, 6, 3))

    def objective(logits, hard):
        return jnp.sum(weights * gumbel.gumbel_softmax(key, logits, 0.5, hard))

    grad_hard = jax.grad(objective)(logits, True)
    np.testing.assert_allclose(grad_hard, jax.grad(objective)(logits, False), rtol=1e-6)
    assert np.abs(grad_hard).max() > 0


def test_nll_gaussian_by_hand():
    preds = jnp.array([[[[1.0]], [[2.0]]], [[[3.0]], [[0.0]]]])  # [B=2, N=2, T=1, D=1]
    target = jnp.zeros_like(preds)
    # (1 + 4 + 9 + 0) / (2 * 0.5) / (2 * 2) = 3.5
    np.testing.assert_allclose(losses.nll_gaussian(preds, target, 0.5), 3.5)
    # Per sample: (1 + 4) / 1 / 2 = 2.5 and (9 + 0) / 1 / 2 = 4.5; their mean is the batch's.
    per_sample = losses.nll_gaussian(preds, target, 0.5, per_sample=True)
    np.testing.assert_allclose(per_sample, [2.5, 4.5])


def test_kl_terms_by_hand():
    probs = jnp.array([[[0.5, 0.5], [1.0, 0.0]]])  # [B=1, E=2, K=2]
    # sum p log p = log 0.5 + 1 * log 1 = -0.693147; / (N=2 * B=1)
    np.testing.assert_allclose(losses.kl_categorical(probs, 2), -0.34657359, rtol=1e-6)
    prior = losses.sparse_log_prior(2)
    np.testing.assert_allclose(jnp.exp(prior), [0.91, 0.09], rtol=1e-6)
    # Edge 1: 0.5 (log 0.5 - log 0.91) + 0.5 (log 0.5 - log 0.09) = 0.557981;
    # edge 2: 1 * (log 1 - log 0.91) = 0.094311. Sum 0.652292, / (N=2 * B=1).
    np.testing.assert_allclose(losses.kl_categorical(probs, 2, prior), 0.326146, rtol=1e-5)
    # A second sample [[0, 1], [0.5, 0.5]]: 1 * (log 1 - log 0.09) = 2.407946, plus 0.557981
    # for the other edge; 2.965927 / N=2.
    two = jnp.concatenate([probs, probs[:, ::-1, ::-1]])  # [B=2, E=2, K=2]
    per_sample = losses.kl_categorical(two, 2, prior, per_sample=True)
    np.testing.assert_allclose(per_sample, [0.326146, 1.4829635], rtol=1e-5)
    np.testing.assert_allclose(losses.kl_categorical(two, 2, prior), per_sample.mean(), rtol=1e-6)


def test_sparse_prior_for_four_types():
    np.testing.assert_allclose(
        jnp.exp(losses.sparse_log_prior(4)), [0.91, 0.03, 0.03, 0.03], rtol=1e-6
    )


def test_edge_cross_entropy_by_hand():
    logits = jnp.array([[[0.0, 0.0], [math.log(3.0), 0.0]]])
    labels = jnp.array([[0, 1]])
    # -log(1/2) and -log(1/4), averaged: 1.5 log 2.
    np.testing.assert_allclose(
        losses.edge_cross_entropy(logits, labels), 1.5 * math.log(2), rtol=1e-6
    )


def test_edge_accuracy_by_hand():
    logits = jax.nn.one_hot(jnp.array([[0, 1, 1, 0]]), 2)
    np.testing.assert_allclose(metrics.edge_accuracy(logits, jnp.array([[0, 1, 0, 0]])), 0.75)


def test_best_permutation_undoes_swapped_labels():
    best = jax.jit(functools.partial(metrics.edge_accuracy_best_permutation, edge_types=2))
    logits = jax.nn.one_hot(jnp.array([[1, 0, 0, 1]]), 2)
    labels = jnp.array([[0, 1, 1, 0]])
    assert float(metrics.edge_accuracy(logits, labels)) == 0.0
    accuracy, perm = best(logits, labels)
    assert float(accuracy) == 1.0
    np.testing.assert_array_equal(perm, [1, 0])


def test_best_permutation_three_types():
    logits = jax.nn.one_hot(jnp.array([0, 1, 2, 2, 1]), 3)
    labels = jnp.array([1, 2, 0, 0, 0])
    # Reading types 0, 1, 2 as labels 1, 2, 0 gets 4 of 5; the raw accuracy is 0.
    accuracy, perm = metrics.edge_accuracy_best_permutation(logits, labels, 3)
    np.testing.assert_allclose(accuracy, 0.8)
    np.testing.assert_array_equal(perm, [1, 2, 0])
    confusion = metrics.confusion_matrix(logits, labels, 3)
    np.testing.assert_array_equal(confusion, [[0, 1, 0], [1, 0, 1], [2, 0, 0]])


def test_confusion_mask_drops_padded_samples():
    # Two samples of two edges; the second is padding (mask 0) and must not count.
    logits = jax.nn.one_hot(jnp.array([[0, 1], [1, 1]]), 2)
    labels = jnp.array([[0, 0], [0, 0]])
    confusion = metrics.confusion_matrix(logits, labels, 2, mask=jnp.array([1.0, 0.0]))
    np.testing.assert_array_equal(confusion, [[1, 0], [1, 0]])
    accuracy, _ = metrics.best_permutation(confusion)
    np.testing.assert_allclose(accuracy, 0.5)


def pairwise_auroc(scores, positive):
    """AUROC by its definition: over all (positive, negative) pairs, 1 where the positive
    scores higher, 1/2 for a tie."""
    pos, neg = scores[positive], scores[~positive]
    return np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))


def test_auroc_by_hand():
    # Pairs (positive, negative): (0.35, 0.1) yes, (0.35, 0.4) no, (0.8, both) yes: 3 / 4.
    assert metrics.auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    # Ties count one half: positives {0.5, 0.9}, negatives {0.5, 0.5}: (0.5 + 0.5 + 2) / 4.
    assert metrics.auroc(np.array([0.5, 0.5, 0.5, 0.9]), np.array([0, 1, 0, 1])) == 0.75
    assert metrics.auroc(np.full(6, 0.3), np.array([0, 1] * 3)) == 0.5
    assert metrics.auroc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0
    assert np.isnan(metrics.auroc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(
        metrics.average_ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])), [4, 1, 4, 2, 4]
    )


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_the_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    # Few distinct scores, so most comparisons are ties; [S, E] like eval's.
    scores = rng.integers(0, 6, size=(40, 6)) / 5
    positive = rng.random((40, 6)) < 0.2 + scores * 0.5
    assert metrics.auroc(scores, positive) == pytest.approx(pairwise_auroc(scores, positive))


def test_interaction_score_uses_the_type_read_as_no_interaction():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    # Type 1 is read as label 0 (no interaction): the score is 1 - q(type 1).
    np.testing.assert_allclose(metrics.interaction_scores(probs, [2, 0, 1]), [0.8, 0.7])
    np.testing.assert_allclose(metrics.interaction_scores(probs, [0, 1, 2]), [0.3, 0.9])
