"""Loading in the original format: layouts, normalisation, labels, and one-line errors."""

import numpy as np
import pytest

from nri_jax import data as data_lib
from nri_jax import original_format


def _write_particles(tmp_path, system="springs", n=3, samples=(6, 2, 2), frames=(5, 5, 9)):
    rng = np.random.default_rng(0)
    for split, s, t in zip(original_format.SPLITS, samples, frames, strict=True):
        sfx = original_format.suffix(system, n)
        np.save(tmp_path / f"loc_{split}{sfx}.npy", rng.normal(size=(s, t, 2, n)))
        np.save(tmp_path / f"vel_{split}{sfx}.npy", 0.1 * rng.normal(size=(s, t, 2, n)))
        if system == "springs":
            edges = rng.integers(0, 2, size=(s, n, n)).astype(np.float64)
        else:
            q = rng.choice([-1.0, 1.0], size=(s, n, 1))
            edges = q * np.swapaxes(q, 1, 2)
        np.save(tmp_path / f"edges_{split}{sfx}.npy", edges)
    return {"system": system, "num_objects": n, "dir": str(tmp_path)}


def test_labels_row_major_off_diagonal():
    edges = np.array([[[1, 2, 3], [4, 5, 6], [7, 8, 9]]], dtype=np.float64) % 2
    # Off-diagonal, row-major: (0,1) (0,2) (1,0) (1,2) (2,0) (2,1) -> 2 3 4 6 7 8 -> %2.
    np.testing.assert_array_equal(original_format.edge_labels(edges), [[0, 1, 0, 0, 1, 0]])
    charged = np.array([[[1, -1], [-1, 1]]], dtype=np.float64)
    np.testing.assert_array_equal(original_format.edge_labels(charged), [[0, 0]])
    np.testing.assert_array_equal(original_format.edge_labels(-charged), [[1, 1]])
    # Springs with K edge types: the types themselves.
    types = np.array([[[0, 2, 1], [2, 0, 0], [1, 0, 0]]], dtype=np.float64)
    np.testing.assert_array_equal(original_format.edge_labels(types), [[2, 1, 2, 0, 1, 0]])


@pytest.mark.parametrize("system", ["springs", "charged"])
def test_particle_layout_and_normalisation(tmp_path, system):
    cfg = _write_particles(tmp_path, system)
    splits, norm = data_lib.load_dataset(cfg)
    train = splits["train"]
    assert train.features.shape == (6, 3, 5, 4) and train.features.dtype == np.float32
    assert splits["test"].features.shape == (2, 3, 9, 4)
    # Scalars over the training split: loc and vel each span exactly [-1, 1] there.
    np.testing.assert_allclose(train.features[..., :2].min(), -1, atol=1e-6)
    np.testing.assert_allclose(train.features[..., :2].max(), 1, atol=1e-6)
    np.testing.assert_allclose(train.features[..., 2:].min(), -1, atol=1e-6)
    np.testing.assert_allclose(train.features[..., 2:].max(), 1, atol=1e-6)
    # Layout: feature [s, n, t] = [x, y, vx, vy] of loc[s, t, :, n].
    loc = np.load(tmp_path / f"loc_train_{system}3.npy")
    lo, hi = norm.minimum[0], norm.maximum[0]
    expected = (loc[4, 2, :, 1] - lo) * 2 / (hi - lo) - 1
    np.testing.assert_allclose(train.features[4, 1, 2, :2], expected, rtol=1e-5)
    edges = np.load(tmp_path / f"edges_train_{system}3.npy")
    assert train.labels[3, 2] == int((edges[3, 1, 0] + 1) / 2)  # edge 2 = (1, 0)


def test_kuramoto_per_feature_normalisation(tmp_path):
    rng = np.random.default_rng(1)
    for split in original_format.SPLITS:
        feat = rng.normal(size=(4, 3, 6, 4)) * np.array([1.0, 2.0, 3.0, 4.0])
        np.save(tmp_path / f"feat_{split}_kuramoto3.npy", feat.astype(np.float32))
        np.save(tmp_path / f"edges_{split}_kuramoto3.npy", rng.integers(0, 2, (4, 3, 3)))
    cfg = {"system": "kuramoto", "num_objects": 3, "dir": str(tmp_path)}
    splits, _ = data_lib.load_dataset(cfg)
    f = splits["train"].features
    np.testing.assert_allclose(f.min(axis=(0, 1, 2)), -1, atol=1e-6)
    np.testing.assert_allclose(f.max(axis=(0, 1, 2)), 1, atol=1e-6)


def test_bad_inputs_name_the_problem(tmp_path):
    cfg = _write_particles(tmp_path)
    for name in ("loc", "vel"):  # files named for 3 objects that hold 4
        np.save(tmp_path / f"{name}_valid_springs3.npy", np.zeros((2, 5, 2, 4)))
    with pytest.raises(ValueError, match="hold 4 objects"):
        data_lib.load_dataset(cfg)
    cfg = _write_particles(tmp_path)
    loc = np.load(tmp_path / "loc_valid_springs3.npy")
    loc[0, 0, 0, 0] = np.nan
    np.save(tmp_path / "loc_valid_springs3.npy", loc)
    with pytest.raises(ValueError, match="NaN"):
        data_lib.load_dataset(cfg)
    np.save(tmp_path / "loc_valid_springs3.npy", np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="rank 4"):
        data_lib.load_dataset(cfg)
    (tmp_path / "loc_valid_springs3.npy").unlink()
    with pytest.raises(FileNotFoundError, match="nri_jax.generate"):
        data_lib.load_dataset(cfg)


def test_labels_out_of_range_and_pickles_refused(tmp_path):
    cfg = _write_particles(tmp_path)
    np.save(tmp_path / "edges_test_springs3.npy", np.full((2, 3, 3), 5.0))
    with pytest.raises(ValueError, match="edge labels"):
        data_lib.load_dataset(cfg)
    np.save(tmp_path / "edges_test_springs3.npy", np.array([[None]], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        data_lib.load_dataset(cfg)


def test_phase_features_read_velocity_and_name_a_missing_file(tmp_path):
    """data.features='phase': [cos phi, sin phi, omega, d(phi)/dt] from the raw files; a folder
    written before d(phi)/dt was added names the missing file and says to regenerate."""
    rng = np.random.default_rng(0)
    phase, dphase = rng.uniform(0, 20, (2, 3, 6)), rng.uniform(-3, 12, (2, 3, 6))
    omega = rng.uniform(1, 10, (2, 3))
    for name, array in (("phase", phase), ("omega", omega), ("edges", np.zeros((2, 3, 3)))):
        np.save(tmp_path / f"{name}_train_kuramoto3.npy", array)
    np.save(tmp_path / "feat_train_kuramoto3.npy", np.zeros((2, 3, 6, 4), np.float32))
    with pytest.raises(FileNotFoundError, match="dphase_train_kuramoto3.npy.*regenerate"):
        original_format.read_split(tmp_path, "kuramoto", 3, "train", "phase")
    np.save(tmp_path / "dphase_train_kuramoto3.npy", dphase)
    frames, _ = original_format.read_split(tmp_path, "kuramoto", 3, "train", "phase")
    np.testing.assert_allclose(frames[..., 0], np.cos(phase))
    np.testing.assert_allclose(frames[..., 1], np.sin(phase))
    np.testing.assert_allclose(frames[..., 2], np.broadcast_to(omega[:, :, None], phase.shape))
    np.testing.assert_allclose(frames[..., 3], dphase)
