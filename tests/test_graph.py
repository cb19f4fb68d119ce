"""Message passing against the original's dense one-hot rel_rec / rel_send formulation."""

import numpy as np
import pytest

from nri_jax.graph import edge_to_node, fully_connected, node_to_edge, receiver_rows, sender_rows


def _dense_relations(num_objects):
    """The original's encode_onehot(np.where(ones - eye)) matrices, each [edges, objects]."""
    off_diag = np.ones((num_objects, num_objects)) - np.eye(num_objects)
    rows, cols = np.where(off_diag)
    rel_rec = np.eye(num_objects)[rows]
    rel_send = np.eye(num_objects)[cols]
    return rel_rec, rel_send


def test_fully_connected_is_row_major_receiver_first():
    receivers, senders = fully_connected(3)
    # Edge (i, j) of the off-diagonal in row-major order: receiver i, sender j.
    np.testing.assert_array_equal(receivers, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(senders, [1, 2, 0, 2, 0, 1])
    assert receivers.dtype == np.int32 and senders.dtype == np.int32


@pytest.mark.parametrize("num_objects", [2, 3, 5])
def test_node_to_edge_matches_dense(num_objects):
    rng = np.random.default_rng(num_objects)
    x = rng.normal(size=(2, 3, num_objects, 4)).astype(np.float32)
    receivers, senders = fully_connected(num_objects)
    rel_rec, rel_send = _dense_relations(num_objects)
    expected = np.concatenate([rel_send @ x, rel_rec @ x], axis=-1)  # [senders, receivers]
    np.testing.assert_allclose(node_to_edge(x, senders, receivers), expected, rtol=1e-6)


@pytest.mark.parametrize("num_objects", [2, 3, 5])
def test_edge_rows_from_static_slices_match_dense(num_objects):
    """The static-slice sender/receiver rows are rel_send x and rel_rec x, any leading axes."""
    x = np.random.default_rng(0).normal(size=(2, 3, num_objects, 4)).astype(np.float32)
    rel_rec, rel_send = _dense_relations(num_objects)
    np.testing.assert_array_equal(sender_rows(x), (rel_send @ x).astype(np.float32))
    np.testing.assert_array_equal(receiver_rows(x), (rel_rec @ x).astype(np.float32))


@pytest.mark.parametrize("num_objects", [2, 3, 5])
def test_edge_to_node_matches_dense(num_objects):
    rng = np.random.default_rng(num_objects)
    num_edges = num_objects * (num_objects - 1)
    e = rng.normal(size=(2, 3, num_edges, 4)).astype(np.float32)
    receivers, _ = fully_connected(num_objects)
    rel_rec, _ = _dense_relations(num_objects)
    expected = np.swapaxes(rel_rec, 0, 1) @ e  # incoming = rel_rec^T x
    np.testing.assert_allclose(edge_to_node(e, receivers, num_objects), expected, rtol=1e-5)


def test_edge_to_node_any_graph():
    # Unsorted receivers with unequal in-degrees take the segment-sum path.
    receivers = np.array([2, 0, 2, 1, 2])
    e = np.arange(10, dtype=np.float32).reshape(5, 2)
    expected = np.zeros((4, 2), np.float32)
    np.add.at(expected, receivers, e)
    np.testing.assert_allclose(edge_to_node(e, receivers, 4), expected)


def test_edges_to_matrix_layout_and_round_trip():
    from nri_jax.graph import edges_to_matrix, matrix_to_edges, outgoing_edges

    weights = np.arange(1.0, 7.0)[None]  # edges (0,1) (0,2) (1,0) (1,2) (2,0) (2,1)
    expected = [[0, 1, 2], [3, 0, 4], [5, 6, 0]]  # row = receiver, column = sender
    np.testing.assert_array_equal(edges_to_matrix(weights, 3)[0], expected)
    np.testing.assert_array_equal(matrix_to_edges(np.asarray(expected)), weights[0])
    assert np.isnan(np.diag(edges_to_matrix(weights[0], 3, np.nan))).all()
    # Object j's outgoing edges are those with sender j, in increasing order (closed form
    # against a search over all edges).
    for n in (2, 4, 7):
        _, senders = fully_connected(n)
        for j, edges in enumerate(outgoing_edges(n)):
            np.testing.assert_array_equal(edges, np.flatnonzero(senders == j))
