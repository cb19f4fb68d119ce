"""The NRI model (section 3): encoder q(z|x), Gumbel-softmax sampling, decoder p(x|z).

RNG streams: 'gumbel' for the edge samples, 'dropout' for dropout (train only), 'params' at init.
Besides `__call__` (the training / validation forward pass), the methods `encode`, `sample`,
`decode` and `rollout` run through `model.apply(variables, ..., method="...")`, so evaluation can
encode one stretch of frames and decode another.

Decoder-only variants (`graph`, the paper's "NRI (true graph)" and "NRI (full graph)" rows):
with graph='true' the decoder gets the true edge labels one-hot, with graph='full' every edge as
type 1; the encoder still runs (its logits are returned) but the decoder never sees it, so only
the KL term could reach it and the training loss leaves the KL out for these variants.

This module is the one place where model names (encoder, decoder, graph, message
implementation, dtype) are checked: `make_model` raises a one-line ValueError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nri_jax import precision
from nri_jax.baselines import BASELINES, RECURRENT, RecurrentBaseline
from nri_jax.config import choice
from nri_jax.decoders import IMPLEMENTATIONS, MLPDecoder, RNNDecoder
from nri_jax.encoders import CNNEncoder, MLPEncoder
from nri_jax.gumbel import gumbel_softmax
from nri_jax.sim_decoder import SimDecoder, SimPhysics

ENCODERS = ("mlp", "cnn")
DECODERS = ("mlp", "rnn", "sim")
GRAPHS = ("learned", "true", "full")
MESSAGES = ("auto", *IMPLEMENTATIONS)
BASELINE_NAMES = ("none", *BASELINES)  # config.model.baseline; 'none' is NRI


class NRI(nn.Module):
    """Neural relational inference: trajectories `[batch, objects, time, dims]` -> edges, preds.

    The number of objects and of dims are read from the inputs. `edge_types` is K; `hidden` the
    encoder's width and `decoder_hidden` the decoder's; `factor` picks the factor-graph encoder
    (eqs. 5-8); `skip_first` hard-codes edge type 0 as "no interaction". `graph` picks learned
    edges or a fixed graph for the decoder (module docstring); `physics` configures the 'sim'
    decoder (`nri_jax.sim_decoder`); `messages` picks the decoders' message implementation
    (`nri_jax.decoders`: None for the backend's default, 'plain' or 'fused'); `dtype`
    ('float32' or 'bfloat16') is the encoder's and decoder's matmul operand dtype
    (`nri_jax.precision`; the sim decoder always computes in float32). `decoder_frames` is
    the frames the MLP decoder reads per step (`nri_jax.decoders.MLPDecoderStep`): 1, the
    paper's, or 2, also the last change.
    """

    encoder: str = "mlp"
    decoder: str = "mlp"
    edge_types: int = 2
    hidden: int = 256
    decoder_hidden: int = 256
    factor: bool = True
    skip_first: bool = False
    dropout: float = 0.0
    graph: str = "learned"
    physics: SimPhysics | None = None
    messages: str | None = None
    dtype: str = "float32"
    decoder_frames: int = 1

    def setup(self):
        names = {"encoder": self.encoder, "decoder": self.decoder, "graph": self.graph}
        check_model_names({**names, "dtype": self.dtype})
        dtype = precision.compute_dtype(self.dtype)
        encoder_cls = MLPEncoder if self.encoder == "mlp" else CNNEncoder
        self.encoder_net = encoder_cls(
            self.hidden, self.edge_types, self.dropout, self.factor, dtype=dtype
        )
        if self.decoder == "sim":
            self.decoder_net = SimDecoder(self.physics)
        else:
            decoder_cls = MLPDecoder if self.decoder == "mlp" else RNNDecoder
            frames = {"frames": self.decoder_frames} if self.decoder == "mlp" else {}
            self.decoder_net = decoder_cls(
                self.edge_types,
                self.decoder_hidden,
                self.skip_first,
                self.dropout,
                self.messages,
                dtype=dtype,
                **frames,
            )

    def __call__(
        self,
        inputs: jax.Array,
        *,
        train: bool,
        temperature: float,
        hard: bool,
        prediction_steps: int,
        encoder_inputs: jax.Array | None = None,
        labels: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Encode, sample z, decode (section 3.6).

        inputs `[B, N, T, D]` are decoded; the encoder sees `encoder_inputs` if given, else the
        same frames. The MLP decoder restarts from the truth every `prediction_steps` frames
        (section 3.4); the RNN decoder sees the truth at steps 0..T - prediction_steps
        (section 3.5, the original's burn-in). prediction_steps = 1 is one-step, teacher-forced
        prediction for both.
        `labels` `[B, E]` (int) are the true edge types, needed with graph='true' only.

        Returns dict: logits `[B, E, K]`, probs = softmax(logits) (q(z|x), for the KL), edges
        (the Gumbel-softmax sample z) `[B, E, K]`, preds `[B, N, T - 1, D]` (preds[:, :, t]
        predicts frame t + 1).
        """
        logits = self.encode(inputs if encoder_inputs is None else encoder_inputs, train)
        if self.graph == "learned":
            edges = self.sample(logits, temperature, hard)
        else:
            if labels is None and self.graph == "true":
                if not self.is_initializing():
                    raise ValueError("config.model.graph='true' needs the edge labels")
                labels = jnp.zeros(logits.shape[:-1], jnp.int32)  # values unused at init
            edges = fixed_edges(self.graph, logits.shape[:-1], self.edge_types, labels)
        if self.decoder == "rnn":
            burn_in_steps = max(inputs.shape[2] - prediction_steps, 0)
            preds = self.decoder_net(inputs, edges, burn_in_steps, train)
        else:
            preds = self.decoder_net(inputs, edges, prediction_steps, train)
        probs = jax.nn.softmax(logits, axis=-1)
        return {"logits": logits, "probs": probs, "edges": edges, "preds": preds}

    def encode(self, inputs: jax.Array, train: bool = False) -> jax.Array:
        """Edge-type logits `[B, E, K]` from trajectories `[B, N, T, D]` (section 3.1)."""
        return self.encoder_net(inputs, train)

    def sample(self, logits: jax.Array, temperature: float, hard: bool) -> jax.Array:
        """Gumbel-softmax sample z `[B, E, K]` (eq. 9), noise from the 'gumbel' RNG stream."""
        return gumbel_softmax(self.make_rng("gumbel"), logits, temperature, hard)

    def decode(
        self,
        inputs: jax.Array,
        edges: jax.Array,
        prediction_steps: int,
        train: bool = False,
        previous: jax.Array | None = None,
    ) -> jax.Array:
        """Predictions `[B, N, T - 1, D]`, the truth fed in every `prediction_steps` frames.

        MLP and sim decoders: M-step rollouts from frames 0, M, 2M, ... (section 3.4). RNN: input
        the true frame at steps 0, M, 2M, ..., the previous prediction otherwise, with the hidden
        state carried throughout (the original's RNN decoder without burn-in). M = 1 is
        teacher forcing; M >= T - 1 one free rollout from frame 0. `previous` `[B, N, D]` is
        the true frame before inputs[:, :, 0], read by the two-frame MLP decoder only
        (`decoder_frames` = 2, the change into frame 0; without it, zero).
        """
        if self.decoder == "rnn":
            return self.decoder_net(inputs, edges, 0, train, prediction_steps=prediction_steps)
        return self.decoder_net(inputs, edges, prediction_steps, train, **self._before(previous))

    def _before(self, previous: jax.Array | None) -> dict:
        """The keyword that hands `previous` to the two-frame MLP decoder; {} otherwise."""
        if previous is None or self.decoder != "mlp" or self.decoder_frames != 2:
            return {}
        return {"previous": previous}

    def rollout(
        self,
        inputs: jax.Array,
        edges: jax.Array,
        burn_in_steps: int,
        train: bool = False,
        dynamic_graph: bool = False,
        encoder_window: int | None = None,
        temperature: float = 0.5,
    ) -> jax.Array:
        """Predictions `[B, N, T - 1, D]` fed the true frames t <= burn_in_steps, then their own.

        So preds[:, :, burn_in_steps:] is a free rollout from the true frame burn_in_steps (the
        original's `step <= burn_in_steps`). dynamic_graph (RNN decoder only, section 5.2): at
        each step t >= encoder_window the edges are re-inferred from the true frames
        [t - encoder_window, t) and sampled hard (Gumbel noise from 'gumbel'); earlier steps use
        `edges`. All windows are encoded as one batch before the recurrence starts.
        """
        time = inputs.shape[2]
        if self.decoder == "rnn":
            if dynamic_graph:
                if encoder_window is None:
                    raise ValueError("dynamic_graph=True needs encoder_window")
                edges = self._dynamic_edges(inputs, edges, encoder_window, temperature, train)
            return self.decoder_net(inputs, edges, burn_in_steps, train)
        if dynamic_graph:
            raise ValueError("dynamic_graph needs config.model.decoder='rnn'")
        if burn_in_steps >= time - 2:
            return self.decoder_net(inputs, edges, 1, train)
        # One free run from the last true frame, after one-step predictions up to it.
        start = max(burn_in_steps, 0)
        before = self._before(inputs[:, :, start - 1] if start > 0 else None)
        free = self.decoder_net(inputs[:, :, start:], edges, time - 1 - start, train, **before)
        if start == 0:
            return free
        forced = self.decoder_net(inputs[:, :, : start + 1], edges, 1, train)
        return jnp.concatenate([forced, free], axis=2)

    def _dynamic_edges(
        self, inputs: jax.Array, edges: jax.Array, window: int, temperature: float, train: bool
    ) -> jax.Array:
        """Per-step edges `[B, T - 1, E, K]`: `edges` before step `window`, re-encoded after."""
        batch, num_objects, time, dims = inputs.shape
        steps = np.arange(window, time - 1)
        static = jnp.broadcast_to(edges[:, None], (batch, time - 1 - len(steps)) + edges.shape[1:])
        if len(steps) == 0:
            return static
        frames = steps[:, None] + np.arange(-window, 0)  # [W, window] frame indices
        windows = jnp.moveaxis(inputs[:, :, frames], 2, 0)  # [W, B, N, window, D]
        logits = self.encode(windows.reshape(-1, num_objects, window, dims), train)
        dynamic = self.sample(logits, temperature, hard=True).reshape(
            (len(steps), batch) + edges.shape[1:]
        )
        return jnp.concatenate([static, jnp.swapaxes(dynamic, 0, 1)], axis=1)


def fixed_edges(
    graph: str, shape: tuple[int, ...], edge_types: int, labels: jax.Array | None = None
) -> jax.Array:
    """Edges z `[*shape, K]` of a fixed graph: labels one-hot ('true'), all type 1 ('full')."""
    if graph == "true":
        return jax.nn.one_hot(labels, edge_types, dtype=jnp.float32)
    if graph == "full":
        type_one = jax.nn.one_hot(1, edge_types, dtype=jnp.float32)
        return jnp.broadcast_to(type_one, (*shape, edge_types))
    raise ValueError(f"config.model.graph={graph!r} is not a fixed graph ('true' or 'full')")


def check_model_names(model_config: Mapping) -> None:
    """One-line ValueError for an unknown encoder, decoder, graph, message implementation or
    dtype."""
    choice("model.encoder", model_config["encoder"], ENCODERS)
    choice("model.decoder", model_config["decoder"], DECODERS)
    choice("model.graph", model_config.get("graph", "learned"), GRAPHS)
    choice("model.messages", model_config.get("messages", "auto"), MESSAGES)
    choice("model.baseline", model_config.get("baseline", "none"), BASELINE_NAMES)
    choice("model.dtype", model_config.get("dtype", "float32"), precision.DTYPES)


def make_model(
    model_config: Mapping, physics: SimPhysics | None = None
) -> NRI | RecurrentBaseline | None:
    """NRI from `config.model` (see `nri_jax/config.py`); ValueError on unknown names.

    The 'sim' decoder needs `physics` (`sim_decoder.physics_from_config(config, norm)`, which
    holds the data's normalisation); without it the model builds but decoding raises. With
    `model.baseline` set, the baseline instead (`nri_jax.baselines`): the LSTM for the
    recurrent ones, None for those without parameters (Static, Corr. (path)).
    """
    check_model_names(model_config)
    baseline = model_config.get("baseline", "none")
    if baseline in RECURRENT:
        return RecurrentBaseline(
            hidden=model_config["hidden"],
            joint=baseline == "lstm_joint",
            dropout=model_config["dropout"],
        )
    if baseline != "none":
        return None
    messages = model_config.get("messages", "auto")
    return NRI(
        encoder=model_config["encoder"],
        decoder=model_config["decoder"],
        edge_types=model_config["edge_types"],
        hidden=model_config["hidden"],
        decoder_hidden=model_config["decoder_hidden"],
        factor=model_config["factor"],
        skip_first=model_config["skip_first"],
        dropout=model_config["dropout"],
        graph=model_config.get("graph", "learned"),
        physics=physics,
        messages=None if messages == "auto" else messages,
        dtype=model_config.get("dtype", "float32"),
        decoder_frames=model_config.get("decoder_frames", 1),
    )
