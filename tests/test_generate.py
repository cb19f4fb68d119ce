"""Dataset generation: file format, determinism, reuse, atomic writes, validation, CLI."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
from test_springs import original_sample_system

from nri_jax import config as config_lib
from nri_jax import data as data_lib
from nri_jax import generate, original_format
from simulators import charged, springs

ROOT = pathlib.Path(__file__).resolve().parents[1]
# One tiny shape for every generation test, so that each program compiles once.
TINY = dict(
    num_objects=5,
    num_train=24,
    num_valid=8,
    num_test=8,
    length=500,  # 4 frames
    length_test=1000,  # 9 frames
    sample_freq=100,
    seed=42,
    dt=1e-3,
)
CHUNK = 16


def tiny_config(directory, system="springs", **overrides):
    return ml_collections.ConfigDict(dict(TINY, system=system, dir=str(directory)) | overrides)


def load(directory, system="springs", n=5):
    return {
        path.name: np.load(path)
        for path in sorted(pathlib.Path(directory).glob(f"*_{system}{n}.npy"))
    }


@pytest.fixture(scope="module")
def springs_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("springs")
    generate.generate_dataset(tiny_config(directory), progress=False, chunk_size=CHUNK)
    return directory


# ----------------------------------------------------------------------------------------------
# Format.


def test_particle_files_have_the_original_layout(springs_dir):
    files = load(springs_dir)
    for split, s, t in (("train", 24, 4), ("valid", 8, 4), ("test", 8, 9)):
        for prefix in ("loc", "vel"):
            array = files[f"{prefix}_{split}_springs5.npy"]
            assert array.shape == (s, t, 2, 5) and array.dtype == np.float32
        edges = files[f"edges_{split}_springs5.npy"]
        assert edges.shape == (s, 5, 5) and edges.dtype == np.float64
        assert set(np.unique(edges).tolist()) <= {0.0, 1.0}
    assert all(np.all(np.abs(a) <= 5.0) for name, a in files.items() if name.startswith("loc"))
    manifest = json.loads((springs_dir / "manifest_springs5.json").read_text())
    assert manifest["data"]["seed"] == 42
    assert manifest["shapes"]["loc_test_springs5.npy"] == [8, 9, 2, 5]
    assert not list(springs_dir.glob(".*"))  # No temporary files left behind.


def test_files_are_exactly_the_simulate_trajectories(springs_dir):
    """The chunked fast path writes exactly what the public `simulate` returns (same batch),
    from the original's draw of each system: the default config gives the paper's data."""
    files = load(springs_dir)
    split_key = jax.random.fold_in(jax.random.key(42), original_format.SPLITS.index("valid"))
    keys = jax.vmap(jax.random.fold_in, (None, 0))(split_key, np.arange(8, dtype=np.uint32))
    sample = jax.jit(jax.vmap(lambda k: original_sample_system(k, 5)))
    loc0, vel0, weights, edges = sample(keys)
    loc, vel = springs.simulate(loc0, vel0, weights, num_frames=4, sample_freq=100, dt=1e-3)
    np.testing.assert_array_equal(files["loc_valid_springs5.npy"], np.swapaxes(loc, -1, -2))
    np.testing.assert_array_equal(files["vel_valid_springs5.npy"], np.swapaxes(vel, -1, -2))
    np.testing.assert_array_equal(files["edges_valid_springs5.npy"], edges)


def test_charged_split_has_signed_edges_and_balanced_labels():
    out = charged.generate_split(jax.random.key(0), 64, 5, 500, 1000, 100, 1e-3, CHUNK, False)
    assert out["loc"].shape == (64, 4, 2, 5) and out["loc"].dtype == np.float32
    edges = out["edges"]
    assert edges.dtype == np.float64
    assert np.all(np.diagonal(edges, axis1=1, axis2=2) == 1)
    off = edges[:, ~np.eye(5, dtype=bool)]
    assert set(np.unique(off).tolist()) == {-1.0, 1.0}
    assert 0.35 < ((off + 1) / 2).mean() < 0.65  # 1280 labels, only 320 independent charges.
    assert np.all(np.abs(out["loc"]) <= 5.0)


# ----------------------------------------------------------------------------------------------
# Determinism.


def test_same_seed_gives_identical_files_and_another_seed_different(springs_dir, tmp_path):
    generate.generate_dataset(tiny_config(tmp_path / "a"), progress=False, chunk_size=CHUNK)
    generate.generate_dataset(tiny_config(tmp_path / "b", seed=7), progress=False, chunk_size=CHUNK)
    first, again, other = load(springs_dir), load(tmp_path / "a"), load(tmp_path / "b")
    assert first.keys() == again.keys() == other.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
        assert not np.array_equal(first[name], other[name])


def test_results_do_not_depend_on_chunk_size():
    key = jax.random.key(1)
    whole = springs.generate_split(key, 24, 5, 500, 1000, 100, 1e-3, CHUNK, False)
    chunked = springs.generate_split(key, 24, 5, 500, 1000, 100, 1e-3, 5, False)
    for name in whole:
        np.testing.assert_array_equal(whole[name], chunked[name])


def test_many_objects_generate_in_cache_sized_chunks(monkeypatch):
    # Above the pair loop's 16 objects a CPU device simulates at most
    # DENSE_FORCE_CACHE_BYTES of [2, N, N, batch] force temporaries at once: 25 trajectories
    # of 40 objects. The values are those of one chunk for all, to rounding.
    from simulators import particles

    chunks = []
    real = particles.padded_chunk_size
    monkeypatch.setattr(
        particles, "padded_chunk_size", lambda *a: chunks.append(real(*a)) or chunks[-1]
    )
    key = jax.random.key(3)
    capped = springs.generate_split(key, 30, 40, 300, 300, 100, 1e-3, 1024, False)
    monkeypatch.setattr(particles, "DENSE_FORCE_CACHE_BYTES", 1 << 40)
    whole = springs.generate_split(key, 30, 40, 300, 300, 100, 1e-3, 1024, False)
    devices = jax.local_device_count()
    assert chunks[0] == real(25 * devices, 30, devices) < chunks[1] == real(1024, 30, devices)
    np.testing.assert_array_equal(capped["edges"], whole["edges"])
    for name in ("loc", "vel"):
        np.testing.assert_allclose(capped[name], whole[name], rtol=1e-5, atol=1e-6)


TWO_DEVICES_SCRIPT = """
import sys

import jax
import numpy as np

jax.config.update("jax_num_cpu_devices", 2)
from simulators import charged

assert len(jax.local_devices()) == 2
out = charged.generate_split(jax.random.key(0), 128, 5, 500, 1000, 100, 1e-3, 128, False)
np.savez(sys.argv[1], **out)
"""


def test_two_host_devices_give_the_same_data_as_one(tmp_path):
    """What the CLI writes (one device per core) equals what `train.py` would (one device)."""
    path = tmp_path / "two.npz"
    result = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES_SCRIPT, str(path)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(jax.local_devices()) == 1
    one = charged.generate_split(jax.random.key(0), 128, 5, 500, 1000, 100, 1e-3, 128, False)
    two = np.load(path)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name])


# ----------------------------------------------------------------------------------------------
# Reuse and atomic writes.


def copy_dataset(source, target):
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_existing_dataset_is_reused(springs_dir, tmp_path, capsys):
    directory = copy_dataset(springs_dir, tmp_path / "copy")
    mtimes = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    generate.generate_dataset(tiny_config(directory), progress=False)
    assert "reusing" in capsys.readouterr().out
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}


def test_missing_file_or_stale_temp_file_regenerates_only_that_split(springs_dir, tmp_path, capsys):
    directory = copy_dataset(springs_dir, tmp_path / "copy")
    # An interrupted write leaves a temporary file and no final file.
    (directory / "vel_valid_springs5.npy").unlink()
    (directory / ".vel_valid_springs5.npy.abc123.tmp").write_bytes(b"partial")
    train_mtime = (directory / "loc_train_springs5.npy").stat().st_mtime_ns
    generate.generate_dataset(tiny_config(directory), progress=False, chunk_size=CHUNK)
    out = capsys.readouterr().out
    assert "valid: incomplete" in out and "train: reusing" in out
    assert (directory / "loc_train_springs5.npy").stat().st_mtime_ns == train_mtime
    regenerated, original = load(directory), load(springs_dir)
    for name in original:
        np.testing.assert_array_equal(regenerated[name], original[name])


def test_mismatched_files_raise_instead_of_being_overwritten(springs_dir, tmp_path):
    directory = copy_dataset(springs_dir, tmp_path / "copy")
    (directory / "manifest_springs5.json").unlink()
    np.save(directory / "loc_train_springs5.npy", np.zeros((3, 4, 2, 5), np.float32))
    with pytest.raises(ValueError, match=r"config\.data\.dir: .*loc_train_springs5.npy: shape"):
        generate.generate_dataset(tiny_config(directory), progress=False)
    assert np.load(directory / "loc_train_springs5.npy").shape == (3, 4, 2, 5)


def test_dataset_made_with_other_settings_raises(springs_dir, tmp_path):
    directory = copy_dataset(springs_dir, tmp_path / "copy")
    with pytest.raises(ValueError, match=r"config\.data\.dir: .*seed=42 \(config: 3\)"):
        generate.generate_dataset(tiny_config(directory, seed=3), progress=False)


def test_dataset_with_another_graph_or_edge_types_raises(springs_dir, tmp_path):
    directory = copy_dataset(springs_dir, tmp_path / "copy")
    with pytest.raises(ValueError, match=r"config\.data\.dir: .*graph='er' \(config: 'ba'\)"):
        generate.generate_dataset(tiny_config(directory, graph="ba", ba_m=2), progress=False)
    with pytest.raises(ValueError, match=r"edge_prob=0\.5 \(config: 0\.3\)"):
        generate.generate_dataset(tiny_config(directory, edge_prob=0.3), progress=False)
    constants = dict(spring_constants=(0.0, 0.1, 1.0))
    with pytest.raises(ValueError, match=r"spring_constants=\[0\.0, 0\.1\] \(config: "):
        generate.generate_dataset(tiny_config(directory, **constants), progress=False)
    # The keys of another family do not change an Erdos-Renyi dataset: it is reused.
    generate.generate_dataset(tiny_config(directory, ba_m=3), progress=False)


def test_manifest_from_before_the_graph_keys_means_the_papers_draw(springs_dir, tmp_path):
    directory = copy_dataset(springs_dir, tmp_path / "copy")
    manifest = directory / "manifest_springs5.json"
    recorded = json.loads(manifest.read_text())
    assert recorded["data"]["graph"] == "er" and recorded["data"]["edge_prob"] == 0.5
    for key in ("graph", "edge_prob", "spring_constants", "type_probs"):
        del recorded["data"][key]
    manifest.write_text(json.dumps(recorded))
    generate.generate_dataset(tiny_config(directory), progress=False)  # reused, no error
    with pytest.raises(ValueError, match=r"graph='er' \(config: 'ws'\)"):
        generate.generate_dataset(tiny_config(directory, graph="ws"), progress=False)


def test_a_graph_family_with_three_edge_types_end_to_end(tmp_path):
    settings = dict(graph="ba", ba_m=2, spring_constants=(0.0, 0.1, 1.0), type_probs=(0.5, 0.5))
    config = tiny_config(tmp_path, num_valid=0, num_test=0, **settings)
    generate.generate_dataset(config, progress=False, chunk_size=CHUNK)
    edges = np.load(tmp_path / "edges_train_springs5.npy")
    assert set(np.unique(edges).tolist()) == {0.0, 1.0, 2.0}
    np.testing.assert_array_equal((edges > 0).sum(axis=(1, 2)), 2 * 2 * 3)  # m (N - m) edges
    manifest = json.loads((tmp_path / "manifest_springs5.json").read_text())["data"]
    assert manifest["graph"] == "ba" and manifest["ba_m"] == 2 and "edge_prob" not in manifest
    assert manifest["spring_constants"] == [0.0, 0.1, 1.0]
    # The labels are the types themselves, 0..K-1.
    features, raw_edges = original_format.read_split(tmp_path, "springs", 5, "train")
    norm = data_lib.fit_normalisation("springs", features)
    split = data_lib.make_split(features, raw_edges, norm, 3, "train")
    np.testing.assert_array_equal(split.labels, original_format.edge_labels(edges))
    assert set(np.unique(split.labels).tolist()) == {0, 1, 2}


def test_dataset_files_lists_non_empty_splits(tmp_path):
    files = generate.dataset_files(tiny_config(tmp_path, num_test=0))
    assert list(files) == ["train", "valid"]
    assert [p.name for p in files["train"]] == [
        "loc_train_springs5.npy",
        "vel_train_springs5.npy",
        "edges_train_springs5.npy",
    ]


def test_kuramoto_dispatch_writes_whatever_the_generator_returns(tmp_path, monkeypatch):
    calls = []

    def fake_generate_split(key, num_sims, n, length, length_test, sample_freq, dt, **kwargs):
        calls.append((num_sims, length, length_test))
        t = length // sample_freq - 1
        return {
            "feat": np.zeros((num_sims, n, t, 4), np.float32),
            "edges": np.zeros((num_sims, n, n), np.int64),
            "omega": np.zeros((num_sims, n), np.float32),
        }

    monkeypatch.setattr(generate, "_generate_split_fn", lambda system: fake_generate_split)
    config = tiny_config(tmp_path, "kuramoto", num_test=0)
    generate.generate_dataset(config, progress=False)
    assert calls == [(24, 500, 1000), (8, 500, 1000)]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "feat_train_kuramoto5.npy" in names and "omega_valid_kuramoto5.npy" in names
    assert "manifest_kuramoto5.json" in names
    assert np.load(tmp_path / "edges_train_kuramoto5.npy").dtype == np.int64


# ----------------------------------------------------------------------------------------------
# Validation and the command line.


@pytest.mark.parametrize(
    "field, value",
    [
        ("system", "pendulum"),
        ("num_objects", 1),
        ("num_train", -1),
        ("num_valid", -1),
        ("num_test", -5),
        ("length", 5050),
        ("length_test", 150),
        ("length", 100),  # 0 frames
        ("sample_freq", 0),
        ("dt", 0.0),
        ("dt", -1e-3),
        ("graph", "tree"),
        ("edge_prob", 1.5),
        ("ba_m", 5),  # not fewer than the 5 objects
        ("ws_k", 3),
        ("sbm_blocks", 6),
        ("sbm_p_in", -0.1),
        ("spring_constants", (0.1, 0.5)),  # type 0 must be no spring
        ("spring_constants", (0.0, 0.0)),
        ("type_probs", (0.5, 0.6)),  # one interaction type: () or (1.0,)
    ],
)
def test_bad_config_raises_naming_the_field(tmp_path, field, value):
    config = tiny_config(tmp_path / "data")
    config[field] = value
    if field.startswith(("ba_", "ws_", "sbm_")):
        config.graph = field.split("_")[0]
    with pytest.raises(ValueError, match=rf"^config\.data\.{field}[=:]"):
        generate.generate_dataset(config, progress=False)
    assert not list((tmp_path / "data").glob("*.npy"))


def test_graph_keys_are_refused_for_charged_and_edge_types_checked_against_the_model(tmp_path):
    config = tiny_config(tmp_path, "charged", graph="er")
    with pytest.raises(ValueError, match=r"^config\.data\.graph: charged particles all interact"):
        generate.validate_data_config(config)
    full = config_lib.base_config("springs")
    full.data.spring_constants = (0.0, 0.1, 1.0)
    with pytest.raises(ValueError, match=r"^config\.model\.edge_types=2 is fewer than the 3"):
        config_lib.check_config(full, num_devices=1)
    full.model.edge_types = 3
    config_lib.check_config(full, num_devices=1)


def test_a_test_split_alone(tmp_path):
    """num_train = num_valid = 0: a new test split, e.g. for a trained run's eval.py --data_dir."""
    config = tiny_config(tmp_path, num_train=0, num_valid=0)
    generate.generate_dataset(config, progress=False, chunk_size=CHUNK)
    assert sorted(p.name for p in tmp_path.glob("*.npy")) == [
        "edges_test_springs5.npy",
        "loc_test_springs5.npy",
        "vel_test_springs5.npy",
    ]
    # Training still refuses such a config, naming the keys.
    from nri_jax.config import base_config, check_config

    full = base_config("springs")
    full.data.num_train = 0
    with pytest.raises(ValueError, match="num_train=0"):
        check_config(full)


def test_unwritable_dir_raises_naming_the_field(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"^config\.data\.dir: cannot write"):
        generate.validate_data_config(tiny_config(tmp_path / "file" / "data"))


def test_cli_prints_a_one_line_error_without_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nri_jax.generate",
            "--config",
            str(ROOT / "configs" / "springs.py"),
            f"--config.data.dir={tmp_path}",
            "--config.data.sample_freq=0",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: config.data.sample_freq=0 ")


def test_cli_generates_a_tiny_dataset(tmp_path):
    overrides = {k: v for k, v in TINY.items() if k not in ("seed", "dt")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nri_jax.generate",
            "--config",
            str(ROOT / "configs" / "charged.py"),
            f"--config.data.dir={tmp_path}",
            "--noprogress",
            *(f"--config.data.{k}={v}" for k, v in overrides.items()),
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "charged5 test: wrote" in result.stdout
    assert np.load(tmp_path / "loc_test_charged5.npy").shape == (8, 9, 2, 5)
    assert (tmp_path / "manifest_charged5.json").exists()
