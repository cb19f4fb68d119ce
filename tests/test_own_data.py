"""A user's own trajectories (nri_jax/own_data.py): reading, normalisation, and the one-line
error for each kind of bad input, raised before anything is compiled."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nri_jax import data as data_lib
from nri_jax import own_data

ROOT = Path(__file__).resolve().parents[1]


def own_config(data_dir, **overrides):
    """configs/own_data.py at the sizes of configs/test.py (the tests' compiled shapes)."""
    from configs import own_data as own_data_config

    config = own_data_config.get_config()
    config.data.dir = str(data_dir)
    config.model.hidden = 16
    config.model.decoder_hidden = 16
    config.train.epochs = 2
    config.train.batch_size = 8
    config.train.prediction_steps = 3
    config.eval.prediction_steps = 5
    config.eval.batch_size = 8
    for key, value in overrides.items():
        group, name = key.split(".")
        config[group][name] = value
    return config


def make_arrays(seed=0, objects=3, dims=4, samples=(32, 12, 12), frames=(9, 9, 19)):
    """{"train": (trajectories, edges), ...}: random walks and random 0/1 edge types."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, s, t in zip(own_data.SPLITS, samples, frames, strict=True):
        x = np.cumsum(rng.normal(size=(s, objects, t, dims)), axis=2).astype(np.float32)
        out[split] = (x, rng.integers(0, 2, size=(s, objects, objects)))
    return out


def write_folder(folder, arrays, edges=True):
    """The arrays as a user writes them: np.savez, one file per split."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, (x, e) in arrays.items():
        extra = {"edges": e} if edges and e is not None else {}
        np.savez(folder / f"{split}.npz", trajectories=x, **extra)
    return folder


def test_reads_any_objects_and_dims_with_or_without_edges(tmp_path):
    arrays = make_arrays(objects=2, dims=1, frames=(5, 5, 7))
    folder = write_folder(tmp_path / "d", arrays)
    np.savez(folder / "valid.npz", trajectories=arrays["valid"][0])  # valid without edges
    splits, norm = data_lib.load_dataset(own_config(folder).data)
    assert set(splits) == {"train", "valid", "test"} and norm.dims == 1
    assert splits["train"].features.shape == (32, 2, 5, 1)
    assert splits["train"].labelled and not splits["valid"].labelled
    assert splits["test"].source == str(folder / "test.npz")
    # Labels are the edge types off the diagonal, row-major: (0, 1) then (1, 0).
    edges = arrays["train"][1]
    np.testing.assert_array_equal(splits["train"].labels, edges[:, [0, 1], [1, 0]])
    # test.npz is optional.
    (folder / "test.npz").unlink()
    splits, _ = data_lib.load_dataset(
        own_config(folder).data, splits=own_data.SPLITS, optional=("test",)
    )
    assert set(splits) == {"train", "valid"}


def test_normalisation_per_feature_dim_from_the_training_split(tmp_path):
    arrays = make_arrays(dims=3)
    scale = np.array([1.0, 100.0, 1e-3])  # dims on different scales are scaled apart
    arrays = {s: (x * scale + [5.0, -2.0, 0.0], e) for s, (x, e) in arrays.items()}
    splits, norm = data_lib.load_dataset(own_config(write_folder(tmp_path, arrays)).data)
    train = arrays["train"][0].astype(np.float64)
    lo, hi = train.min(axis=(0, 1, 2)), train.max(axis=(0, 1, 2))
    np.testing.assert_allclose(norm.minimum, lo)
    np.testing.assert_allclose(norm.maximum, hi)
    for split in own_data.SPLITS:  # valid and test reuse the training split's min / max
        expected = (arrays[split][0] - lo) * 2 / (hi - lo) - 1
        np.testing.assert_allclose(splits[split].features, expected, rtol=1e-5, atol=1e-5)
        assert splits[split].features.dtype == np.float32
    np.testing.assert_allclose(norm.invert(splits["test"].features), arrays["test"][0], rtol=1e-5)


def _save(split, **arrays):
    return lambda folder: np.savez(folder / f"{split}.npz", **arrays)


def _keep(folder):
    pass


def _single_array(folder):  # np.save's .npy under the .npz name
    np.save(folder / "train.npy", make_arrays()["train"][0])
    os.replace(folder / "train.npy", folder / "train.npz")


def _cases():
    """name -> (change to a good folder, config overrides, split named, words of the message)."""
    x = make_arrays()["train"][0]
    nan = x.copy()
    nan[3, 1, 2, 0] = np.nan
    edges_inf = np.zeros((32, 3, 3))
    edges_inf[0, 0, 1] = np.inf
    objects = np.empty((32,), dtype=object)
    objects[:] = [np.zeros(3)] * 32
    constant = np.concatenate([x[..., :3], 0 * x[..., :1]], axis=-1)
    no_edges = np.zeros((32, 3, 3))
    return {
        "missing key": (_save("train", edges=no_edges), {}, "train", "no 'trajectories'"),
        "unknown key": (
            _save("train", trajectories=x, edge=no_edges),
            {},
            "train",
            "unknown array(s) 'edge'",
        ),
        "rank": (_save("valid", trajectories=x[:, :, :, 0]), {}, "valid", "(rank 4)"),
        "nan": (
            _save("train", trajectories=nan),
            {},
            "train",
            "NaN/Inf values (first at index (3, 1, 2, 0))",
        ),
        "inf edges": (
            _save("train", trajectories=x, edges=edges_inf),
            {},
            "train",
            "'edges' holds 1 NaN/Inf",
        ),
        "objects": (_save("valid", trajectories=x[:12, :2]), {}, "valid", "2 objects but"),
        "dims": (_save("test", trajectories=x[:4, :, :, :2]), {}, "test", "2 feature dims but"),
        "one object": (_save("train", trajectories=x[:, :1]), {}, "train", "holds 1 object(s)"),
        "cnn frames": (_keep, {"model.encoder": "cnn"}, "train", "CNN encoder needs >= 14"),
        "prediction frames": (
            _keep,
            {"train.prediction_steps": 9},
            "train",
            "too few for config.train.prediction_steps=9",
        ),
        "timesteps": (_keep, {"train.timesteps": 12}, "train", "fewer than config.train.timesteps"),
        "valid short": (
            _save("valid", trajectories=x[:12, :, :5]),
            {},
            "valid",
            "5 frames but config.train.timesteps=9",
        ),
        "test horizon": (
            _keep,
            {"eval.prediction_steps": 10},
            "test",
            "config.train.timesteps + config.eval.prediction_steps + 1 = 20",
        ),
        "test short": (_save("test", trajectories=x[:4, :, :6]), {}, "test", "encoder reads"),
        "labels": (
            _save("train", trajectories=x, edges=np.full((32, 3, 3), 2)),
            {},
            "train",
            "edge labels span [2, 2] but must lie in [0, 1]",
        ),
        "non-integer edges": (
            _save("train", trajectories=x, edges=np.full((32, 3, 3), 0.5)),
            {},
            "train",
            "integer edge types",
        ),
        "edges shape": (
            _save("train", trajectories=x, edges=np.zeros((32, 3))),
            {},
            "train",
            "'edges' must be [samples, objects, objects] = (32, 3, 3)",
        ),
        "pickled": (_save("valid", trajectories=objects), {}, "valid", "would unpickle (refused)"),
        "not an archive": (_single_array, {}, "train", "one unnamed array"),
        "constant dim": (_save("train", trajectories=constant), {}, "train", "dim(s) [3] are"),
        "supervised, no edges": (
            _save("valid", trajectories=x[:12]),
            {"train.mode": "supervised"},
            "valid",
            "no 'edges', but config.train.mode='supervised'",
        ),
    }


CASES = list(_cases())


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gets_one_line_naming_the_file(tmp_path, name):
    """Raised by training's own path (train.py's), before any model work."""
    from nri_jax.training import train_and_evaluate

    change, overrides, split, words = _cases()[name]
    folder = write_folder(tmp_path / "data", make_arrays())
    change(folder)
    with pytest.raises(ValueError) as error:
        train_and_evaluate(own_config(folder, **overrides), tmp_path / "run")
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(folder / f"{split}.npz")), message
    assert words in message, message
    assert not (tmp_path / "run").exists(), "nothing is written for bad input"


def test_missing_files_and_in_memory_arrays_are_named(tmp_path):
    folder = write_folder(tmp_path / "data", make_arrays())
    (folder / "valid.npz").unlink()
    with pytest.raises(FileNotFoundError, match="valid.npz not found; own data is a folder"):
        data_lib.load_dataset(own_config(folder).data)
    arrays = make_arrays()
    arrays["valid"] = (arrays["valid"][0][:, :2], None)
    with pytest.raises(ValueError, match=r"data\['valid'\]: 2 objects but data\['train'\] has 3"):
        data_lib.load_dataset(own_config("").data, arrays=arrays)
    with pytest.raises(ValueError, match="unknown split.*'validation'"):
        data_lib.load_dataset(own_config("").data, arrays={"validation": arrays["valid"]})
    with pytest.raises(ValueError, match="in-memory arrays are own data"):
        from configs import test as test_config

        data_lib.load_dataset(test_config.get_config().data, arrays=arrays)


class _Marker:
    """Unpickling this calls open(path, 'w'): the file appears only if something unpickles."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_archives_are_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    archive = tmp_path / "train.npz"
    np.savez(archive, trajectories=np.array([_Marker(marker)], dtype=object))
    with pytest.raises(ValueError, match="object array, which loading would unpickle"):
        own_data.read_file(archive)
    assert not marker.exists()
    # The control: loading with pickle allowed does run the payload.
    with np.load(archive, allow_pickle=True) as loaded:
        loaded["trajectories"]
    assert marker.exists()


def test_write_split_round_trips(tmp_path):
    x, e = make_arrays()["valid"]
    own_data.write_split(tmp_path / "valid.npz", x, e)
    raw = own_data.read_file(tmp_path / "valid.npz")
    np.testing.assert_array_equal(raw.trajectories, x)
    np.testing.assert_array_equal(raw.edges, e)
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"
    with pytest.raises(ValueError, match="rank 4"):
        own_data.write_split(tmp_path / "bad.npz", x[0])
    assert not (tmp_path / "bad.npz").exists()


def _stderr_lines(proc):
    lines = proc.stderr.strip().splitlines()
    return [line for line in lines if not line.startswith("restarting with GLIBC_TUNABLES")]


def test_train_py_prints_one_line_and_exits_nonzero(tmp_path):
    folder = write_folder(tmp_path / "data", make_arrays())
    x = np.load(folder / "test.npz")["trajectories"]
    x[0, 0, 0, 0] = np.inf
    np.savez(folder / "test.npz", trajectories=x)
    args = ["train.py", "--config", "configs/own_data.py", f"--config.data.dir={folder}"]
    args += [f"--workdir={tmp_path / 'run'}"]
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = _stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(f"error: {folder / 'test.npz'}: "), lines
    assert "NaN/Inf" in lines[0]
