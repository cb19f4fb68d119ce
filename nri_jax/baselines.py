"""The paper's baselines (§5.1; REFERENCE.md §6): Static, LSTM (single / joint), Corr. (path /
LSTM). `config.model.baseline` picks one; `train.py` and `eval.py` run them like NRI and write
the same `eval.json` keys (`mse_per_step` for the predictors, `edge_accuracy` for the
correlation baselines).

- Static: x_{t+1} = x_t. No parameters.
- LSTM (joint), as the original's `lstm_baseline.py`: per object a 2-layer input MLP
  (D -> H -> H, ReLU, dropout between), the N object vectors concatenated (N H) into a
  2-layer LSTM of width N H, an output MLP (N H -> N H ReLU -> N D); prediction x + delta.
  It only works for the number of objects it was trained on.
- LSTM (single): the same per object with shared weights, each object its own LSTM state of
  width H and no information between objects.
  Both: Dense layers Xavier-normal with bias 0.1 (the original's `init_weights`), LSTM
  weights PyTorch's default U(-1/sqrt(H), 1/sqrt(H)). Trained on the NLL (eq. 18) with the
  true frames fed at steps 0..T - M and their own predictions after (the original's
  `step <= burn_in_steps`); validated one-step, teacher-forced; the Table 2 protocol burns in
  on the true frames 0..49 and predicts the next 20.
- Corr. (path): each object's trajectory over the encoder's frames, flattened, and the Pearson
  correlation of every pair of objects as the edge score. Corr. (LSTM): the same on the objects'
  final hidden states of a trained LSTM (single). The paper's threshold is not published; here
  it is chosen on the validation split (`fit_threshold`): the cut, and whether the score, its
  negation or its absolute value predicts edge type 1 (for charged, whether correlation means
  attraction or repulsion), that label the most validation edges right.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nri_jax.graph import fully_connected
from nri_jax.layers import encoder_dense, torch_bias_init

BASELINES = ("static", "lstm_single", "lstm_joint", "corr_path", "corr_lstm")
RECURRENT = ("lstm_single", "lstm_joint", "corr_lstm")  # the baselines with parameters
CORRELATION = ("corr_path", "corr_lstm")
TRANSFORMS = ("signed", "negated", "absolute")


class _RecurrentStep(nn.Module):
    """One step of the LSTM baseline, shaped as a scan body.

    carry = (per-layer LSTM carries, previous prediction `[B, N, D]`); per step the true frame
    `[B, N, D]` and whether to feed it. Returns (carry, (prediction `[B, N, D]`, the top
    layer's output: `[B, N, H]` single, `[B, N H]` joint)).
    """

    hidden: int
    joint: bool
    num_layers: int
    dropout: float
    train: bool

    @nn.compact
    def __call__(self, carry, truth, use_truth):
        lstm_carries, previous = carry
        x = jnp.where(use_truth, truth, previous)
        batch, num_objects, dims = x.shape
        h = nn.relu(encoder_dense(self.hidden, name="fc1_1")(x))
        h = nn.Dropout(self.dropout, deterministic=not self.train)(h)
        h = nn.relu(encoder_dense(self.hidden, name="fc1_2")(h))
        if self.joint:  # all objects' vectors into one LSTM
            h = h.reshape(batch, num_objects * self.hidden)
        width = h.shape[-1]
        init = torch_bias_init(width)  # PyTorch's LSTM init: U(-1/sqrt(H), 1/sqrt(H))
        new_carries = []
        for layer, layer_carry in enumerate(lstm_carries):
            cell = nn.OptimizedLSTMCell(
                width,
                kernel_init=init,
                recurrent_kernel_init=init,
                bias_init=init,
                name=f"lstm_{layer}",
            )
            layer_carry, h = cell(layer_carry, h)
            new_carries.append(layer_carry)
        top = h
        out = nn.relu(encoder_dense(width, name="fc2_1")(h))
        out = encoder_dense(dims * (num_objects if self.joint else 1), name="fc2_2")(out)
        mu = x + out.reshape(x.shape)
        return (tuple(new_carries), mu), (mu, top)


class RecurrentBaseline(nn.Module):
    """LSTM (single) or LSTM (joint): trajectories `[B, N, T, D]` -> predictions `[B, N, T-1, D]`.

    Called like `nri_jax.model.NRI` (the training step and validation pass serve both), it
    returns predictions and no edges; `rollout` is the Table 2 protocol, `final_hidden` the
    features of Corr. (LSTM).
    """

    hidden: int = 256
    joint: bool = False
    num_layers: int = 2
    dropout: float = 0.0

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array,
        *,
        train: bool,
        prediction_steps: int = 1,
        burn_in_steps: int | None = None,
        temperature: float | None = None,
        hard: bool | None = None,
        encoder_inputs: jax.Array | None = None,
        labels: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """{"preds" `[B, N, T - 1, D]`, "hidden" `[B, N, H]` or `[B, N H]` after the last step}.

        The truth is fed at steps 0..burn_in_steps, by default T - prediction_steps (training:
        T - M; prediction_steps = 1 is teacher forcing). temperature, hard, encoder_inputs and
        labels are NRI's arguments, unused here.
        """
        del temperature, hard, encoder_inputs, labels
        batch, num_objects, time, _ = inputs.shape
        if burn_in_steps is None:
            burn_in_steps = max(time - prediction_steps, 0)
        truth = jnp.moveaxis(inputs[:, :, :-1], 2, 0)  # [T-1, B, N, D]
        use_truth = jnp.asarray(np.arange(time - 1) <= burn_in_steps)
        width = self.hidden * (num_objects if self.joint else 1)
        lead = (batch,) if self.joint else (batch, num_objects)
        zeros = jnp.zeros(lead + (width,), inputs.dtype)
        carry = (tuple((zeros, zeros) for _ in range(self.num_layers)), jnp.zeros_like(truth[0]))
        steps = nn.scan(
            _RecurrentStep,
            variable_broadcast="params",
            split_rngs={"params": False, "dropout": True},
            in_axes=(0, 0),
        )(self.hidden, self.joint, self.num_layers, self.dropout, train, name="step")
        _, (preds, tops) = steps(carry, truth, use_truth)
        return {"preds": jnp.moveaxis(preds, 0, 2), "hidden": tops[-1]}

    def rollout(self, inputs: jax.Array, burn_in_steps: int) -> jax.Array:
        """Predictions `[B, N, T - 1, D]` fed the true frames t <= burn_in_steps, then their own."""
        return self(inputs, train=False, burn_in_steps=burn_in_steps)["preds"]

    def final_hidden(self, inputs: jax.Array) -> jax.Array:
        """The top LSTM layer's output after the last step, teacher-forced: `[B, N, H]`.

        The steps read frames 0..T - 2 (each predicts the next), so frame T - 1 is not read.
        """
        if self.joint:
            raise ValueError("Corr. (LSTM) needs per-object states: the single LSTM")
        return self(inputs, train=False, prediction_steps=1)["hidden"]


# ----------------------------------------------------------------------------------------------
# Correlation baselines.


def correlation_scores(vectors: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of objects' vectors: `[S, N, F]` -> `[S, E]`.

    Edges in `nri_jax.graph.fully_connected` order; a constant vector correlates 0.
    """
    vectors = np.asarray(vectors, np.float64)
    centred = vectors - vectors.mean(axis=-1, keepdims=True)
    norms = np.linalg.norm(centred, axis=-1, keepdims=True)
    unit = centred / np.where(norms > 0, norms, 1.0)
    corr = np.einsum("sif,sjf->sij", unit, unit)
    receivers, senders = fully_connected(vectors.shape[1])
    return corr[:, receivers, senders]


def _transform(scores: np.ndarray, transform: str) -> np.ndarray:
    if transform == "signed":
        return scores
    if transform == "negated":
        return -scores
    return np.abs(scores)


def fit_threshold(scores: np.ndarray, labels: np.ndarray) -> dict:
    """The transform and cut that label the most validation edges right.

    Edge type 1 is predicted where transform(score) > threshold. Cuts tried: the midpoints of
    the sorted distinct transformed scores (every distinct labelling), and the two extremes.
    Returns {"transform", "threshold", "valid_accuracy"}.
    """
    labels = np.asarray(labels).reshape(-1)
    best = None
    for transform in TRANSFORMS:
        values = _transform(np.asarray(scores), transform).reshape(-1)
        order = np.argsort(values, kind="stable")
        sorted_values, sorted_labels = values[order], labels[order]
        # Cut after position k (k = 0..n): the k lowest get type 0, the rest type 1.
        zeros_below = np.concatenate([[0], np.cumsum(sorted_labels == 0)])
        ones_above = np.concatenate([[0], np.cumsum(sorted_labels[::-1] == 1)])[::-1]
        correct = zeros_below + ones_above
        # Only cuts between distinct values are realisable by a threshold.
        valid = np.ones(len(correct), bool)
        valid[1:-1] = sorted_values[1:] > sorted_values[:-1]
        k = int(np.argmax(np.where(valid, correct, -1)))
        if k == 0:
            threshold = sorted_values[0] - 1.0
        elif k == len(values):
            threshold = sorted_values[-1]
        else:
            threshold = 0.5 * (sorted_values[k - 1] + sorted_values[k])
        accuracy = correct[k] / len(values)
        if best is None or accuracy > best["valid_accuracy"]:
            best = {
                "transform": transform,
                "threshold": float(threshold),
                "valid_accuracy": float(accuracy),
            }
    return best


def edge_scores(scores: np.ndarray, fit: dict) -> np.ndarray:
    """The fitted transform of the correlations `[S, E]`: higher means type 1 (the AUROC's)."""
    return _transform(np.asarray(scores), fit["transform"])


def predict_edges(scores: np.ndarray, fit: dict) -> np.ndarray:
    """Edge types `[S, E]` (0 / 1) from scores and a `fit_threshold` result."""
    return (edge_scores(scores, fit) > fit["threshold"]).astype(np.int32)
