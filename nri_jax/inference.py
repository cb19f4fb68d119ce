"""A trained model applied to new trajectories: edge-type probabilities and free rollouts.

Both work in the model's units (normalised frames `[samples, objects, time, dims]`;
`nri_jax.api.Run` converts from and to raw units) and run over padded batches of
`nri_jax.evaluation.eval_batch_size(config)`, as the test protocol does (`padded_batches`), so the
encoder sees the same batch shapes there and here: one compiled program per input shape.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nri_jax.baselines import RecurrentBaseline
from nri_jax.evaluation import padded_batches
from nri_jax.graph import edges_to_matrix
from nri_jax.model import NRI


def map_batches(fn: Callable, arrays: tuple[np.ndarray, ...], batch_size: int) -> np.ndarray:
    """`fn(*batch)` over padded batches of the arrays' leading axis, concatenated and cut back
    to its length (the last batch repeats the last sample, as in evaluation)."""
    num = len(arrays[0])
    index, _ = padded_batches(num, batch_size)
    out = [np.asarray(fn(*(jnp.asarray(a[i]) for a in arrays))) for i in index]
    return np.concatenate(out)[:num]


def make_encoder(model: NRI) -> Callable[[dict, jax.Array], jax.Array]:
    """Jitted `(variables, x [B, N, T, D]) -> logits [B, E, K]` (evaluation mode)."""
    return jax.jit(lambda variables, x: model.apply(variables, x, method="encode"))


def edge_probabilities(logits: np.ndarray, num_objects: int) -> np.ndarray:
    """q(z|x) = softmax(logits `[S, E, K]`) as matrices `[S, N, N, K]` (row = receiver,
    column = sender), the diagonal zero: no edge of any type joins an object to itself."""
    probs = np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1))
    matrix = edges_to_matrix(np.moveaxis(probs, -1, 0), num_objects)  # [K, S, N, N]
    return np.moveaxis(np.asarray(matrix), 0, -1)


def make_predictor(model: NRI | RecurrentBaseline | None, decoder: str) -> Callable:
    """Jitted `(variables, x [B, N, T, D], edges [B, E, K] or None, steps) -> [B, N, steps, D]`:
    frames T .. T + steps - 1 predicted from the true frames, the last one, T - 1, first.

    Markov decoders (MLP, sim) start from frame T - 1 alone; the recurrent ones (the RNN
    decoder, the LSTM baselines) are fed all T true frames first (burn-in), then their own
    predictions. model None is Static (x_{t+1} = x_t).
    """

    def predict(variables, x, edges, steps):
        last = x[:, :, -1:]
        if model is None:
            return jnp.repeat(last, steps, axis=2)
        frames = x.shape[2]
        if isinstance(model, RecurrentBaseline) or decoder == "rnn":
            # Frames after T - 1 only fill the shape: the rollout feeds its own predictions.
            padded = jnp.concatenate([x, jnp.repeat(last, steps, axis=2)], axis=2)
            args = (padded, frames - 1) if edges is None else (padded, edges, frames - 1)
            return model.apply(variables, *args, method="rollout")[:, :, frames - 1 :]
        # M = steps: one free run from frame 0 of a window whose other frames are never read;
        # the two-frame MLP decoder also reads the change from frame T - 2.
        window = jnp.repeat(last, steps + 1, axis=2)
        before = x[:, :, -2] if frames >= 2 else None
        return model.apply(variables, window, edges, steps, method="decode", previous=before)

    return jax.jit(predict, static_argnums=3)
