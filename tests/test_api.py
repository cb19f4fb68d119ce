"""nri_jax.fit / load / Run on own data: training with and without edges, from a folder and
from memory, infer_edges against eval.json, predict in raw units. Every run has the shapes of
configs/test.py (3 objects, 4 dims, 9 frames, batch 8), so the compiled programs are shared."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from test_own_data import make_arrays, own_config, write_folder

import nri_jax
from nri_jax.evaluation import evaluate
from nri_jax.graph import matrix_to_edges

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def arrays():
    return make_arrays()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, arrays):
    return write_folder(tmp_path_factory.mktemp("own"), arrays)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, folder):
    """(Run, eval.json's dict) of a run on the folder with edges, evaluated as eval.py does."""
    workdir = tmp_path_factory.mktemp("runs") / "labelled"
    run = nri_jax.fit(own_config(folder), workdir)
    return run, evaluate(workdir)


def _metrics(workdir):
    """metrics.jsonl without the epochs' wall times."""
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def _assert_same_params(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a.variables), jax.tree.leaves(b.variables)
    assert len(leaves_a) == len(leaves_b) > 10
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_fit_on_a_folder_with_edges_reports_accuracy(labelled, folder, arrays):
    run, result = labelled
    stored = json.loads((run.workdir / "config.json").read_text())
    # Frames and objects read from the files: all 9 frames of train.npz, 3 objects.
    assert stored["train"]["timesteps"] == 9 and stored["data"]["num_objects"] == 3
    assert stored["data"]["dir"] == str(folder)
    last = _metrics(run.workdir)[-1]
    assert last["epoch"] == 2 and {"train_accuracy", "valid_accuracy_perm"} <= set(last)
    assert {"edge_accuracy", "edge_accuracy_raw", "edge_type_permutation"} <= set(result)
    assert len(result["mse_per_step"]) == 5 and result["num_test"] == 12
    norm = json.loads((run.workdir / "normalisation.json").read_text())
    train = arrays["train"][0].astype(np.float64)
    np.testing.assert_allclose(norm["minimum"], train.min(axis=(0, 1, 2)))
    np.testing.assert_allclose(norm["maximum"], train.max(axis=(0, 1, 2)))
    assert json.loads((run.workdir / "eval.json").read_text()) == result


def test_argmax_of_infer_edges_gives_eval_accuracy_raw(labelled, arrays):
    run, result = labelled
    x, edges = arrays["test"]
    predicted = matrix_to_edges(run.infer_edges(x).argmax(-1))
    labels = matrix_to_edges(edges)
    # Edge by edge what the encoder says on the normalised first 9 frames (the layout check).
    logits = run.model.apply(
        run.variables, run.normalisation.apply(x)[:, :, :9].astype(np.float32), method="encode"
    )
    np.testing.assert_array_equal(predicted, np.argmax(logits, -1))
    # eval.json's figures are float32 means of these counts.
    assert (predicted == labels).sum() == round(result["edge_accuracy_raw"] * labels.size)
    relabelled = np.asarray(result["edge_type_permutation"])[predicted]
    assert (relabelled == labels).sum() == round(result["edge_accuracy"] * labels.size)
    # AUROC: 1 - q(the type read as label 0) against label != 0, by the pairwise definition.
    probs = np.moveaxis(matrix_to_edges(np.moveaxis(run.infer_edges(x), -1, 0)), 0, -1)
    none = result["edge_type_permutation"].index(0)
    scores, positive = 1 - probs[..., none], labels != 0
    pairs = scores[positive][:, None] - scores[~positive][None, :]
    expected = np.mean((pairs > 0) + 0.5 * (pairs == 0))
    assert result["edge_auroc"] == pytest.approx(expected, abs=1e-5)
    # Run.evaluate is eval.py's protocol: the same dict.
    assert run.evaluate() == result


def test_infer_edges_are_probabilities_equivariant_under_object_permutation(labelled, arrays):
    run, _ = labelled
    x = arrays["test"][0]
    probs = run.infer_edges(x)
    assert probs.shape == (12, 3, 3, 2) and probs.dtype == np.float32
    diagonal = np.eye(3, dtype=bool)
    assert np.all(probs[:, diagonal] == 0)
    np.testing.assert_allclose(probs[:, ~diagonal].sum(-1), 1.0, atol=1e-6)
    assert probs[:, ~diagonal].min() > 0  # a softmax: no type is ruled out
    perm = np.array([2, 0, 1])
    permuted = run.infer_edges(x[:, perm])
    np.testing.assert_allclose(permuted, probs[:, perm][:, :, perm], atol=1e-5)
    with pytest.raises(ValueError, match="2 feature dims .* trained on 4"):
        run.infer_edges(x[..., :2])
    with pytest.raises(ValueError, match="5 frames; the encoder reads the first"):
        run.infer_edges(x[:, :, :5])


def test_fit_in_memory_equals_fit_from_the_folder(labelled, arrays, tmp_path):
    run, result = labelled
    memory = nri_jax.fit(own_config(""), tmp_path / "memory", data=arrays)
    _assert_same_params(memory, run)
    assert _metrics(memory.workdir) == _metrics(run.workdir)
    # Nothing of the arrays was stored: evaluating needs them again.
    with pytest.raises(ValueError, match="config.data.dir is empty"):
        evaluate(memory.workdir)
    again = memory.evaluate(arrays)
    assert again == {**result, "data_dir": None}
    assert memory.evaluate(arrays["test"]) == again


def test_unsupervised_without_edges_reports_no_accuracy(labelled, arrays, tmp_path):
    run, result = labelled
    folder = write_folder(tmp_path / "no_edges", arrays, edges=False)
    bare = nri_jax.fit(own_config(folder), tmp_path / "run")
    # Unsupervised training never reads the labels: the same parameters as with edges.
    _assert_same_params(bare, run)
    assert not [key for key in _metrics(bare.workdir)[-1] if "accuracy" in key]
    unlabelled = evaluate(bare.workdir)
    assert not [key for key in unlabelled if key.startswith("edge_")]
    for key in ("nll", "kl", "mse_one_step", "mse_per_step"):
        assert unlabelled[key] == result[key], key


def test_predict_returns_raw_units(labelled, arrays, tmp_path):
    run, _ = labelled
    offset = 1000.0
    shifted = {split: (x + offset, e) for split, (x, e) in arrays.items()}
    moved = nri_jax.fit(own_config(""), tmp_path / "shifted", data=shifted)
    x = arrays["test"][0][:, :, :9]
    future = run.predict(x, 4)
    assert future.shape == (12, 3, 4, 4)
    # A run on data offset by a constant predicts the same frames offset by it.
    np.testing.assert_allclose(moved.predict(x + offset, 4) - offset, future, atol=1e-3)
    # Raw units: the first predicted frame is near the last given one (random-walk steps ~1).
    assert 0.05 < np.abs(future[:, :, 0] - x[:, :, -1]).mean() < 5
    # The MLP decoder continues from the last frame alone once the graph is fixed, and a
    # shorter horizon is a prefix of a longer one.
    edges = arrays["test"][1]
    fixed = run.predict(x, 4, edges=edges)
    earlier = x.copy()
    earlier[:, :, :-1] += 3.0
    np.testing.assert_allclose(run.predict(earlier, 4, edges=edges), fixed, rtol=1e-6)
    np.testing.assert_allclose(run.predict(x, 2, edges=edges), fixed[:, :, :2], rtol=1e-6)


def test_eval_horizon_fits_the_test_split(labelled, folder):
    run, _ = labelled
    # 0: every frame after the encoder's 9, i.e. frames 10..18 of 19.
    assert len(run.evaluate(prediction_steps=0)["mse_per_step"]) == 9
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "eval.py", f"--workdir={run.workdir}", "--prediction_steps=10"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [x for x in proc.stderr.splitlines() if not x.startswith("restarting with GLIBC")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {folder / 'test.npz'}: 19 frames"), lines
    assert "config.eval.prediction_steps + 1 = 20" in lines[0]
