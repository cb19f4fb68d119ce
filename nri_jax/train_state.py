"""The training state and the optimiser: what a checkpoint holds and how it is initialised.

Its own module (rather than part of `nri_jax.training`) so that checkpoints and evaluation can
build a restore target without importing the training loop, which imports them: the imports
run config -> data -> model -> train_state -> checkpoints -> evaluation -> training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nri_jax.model import NRI


class TrainState(struct.PyTreeNode):
    """Everything a resumed run needs; `epoch` counts completed epochs."""

    step: jax.Array
    epoch: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    best_valid_nll: jax.Array  # the best `training.selection_score` so far


def make_optimizer(train_config: Mapping, steps_per_epoch: int) -> optax.GradientTransformation:
    """Adam with the learning rate halved every `lr_decay_epochs` epochs (REFERENCE.md §3).

    With `lr_schedule='cosine'`, cosine decay from `lr` to 0 over `epochs` epochs instead.
    """
    if train_config.get("lr_schedule", "step") == "cosine":
        total = max(1, train_config["epochs"] * steps_per_epoch)
        return optax.adam(optax.cosine_decay_schedule(train_config["lr"], total))
    schedule = optax.exponential_decay(
        init_value=train_config["lr"],
        transition_steps=max(1, train_config["lr_decay_epochs"] * steps_per_epoch),
        decay_rate=train_config["lr_decay"],
        staircase=True,
    )
    return optax.adam(schedule)


def make_mesh() -> jax.sharding.Mesh:
    """All devices on one 'batch' axis: plain data parallelism, partitioned by XLA."""
    return jax.make_mesh(
        (jax.device_count(),), ("batch",), axis_types=(jax.sharding.AxisType.Auto,)
    )


def _initial_state(
    model: NRI, config: ml_collections.ConfigDict, tx: optax.GradientTransformation, example
) -> TrainState:
    key = jax.random.key(config.seed)
    rngs = dict(zip(("params", "gumbel", "dropout"), jax.random.split(key, 3), strict=True))
    variables = model.init(
        rngs,
        example,
        train=False,
        temperature=config.train.temperature,
        hard=True,
        prediction_steps=1,
    )
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        epoch=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        best_valid_nll=jnp.asarray(jnp.inf, jnp.float32),
    )


def init_state(
    model: NRI, config: ml_collections.ConfigDict, example: np.ndarray, steps_per_epoch: int
) -> tuple[TrainState, optax.GradientTransformation]:
    """The initial state (parameters from `config.seed`) and the optimiser.

    `example` `[samples, objects, time, dims]` sets the shapes. Initialised as one compiled
    program: op by op, the forward pass that `init` runs compiled ~150 small programs, which
    took 6-7 s before the first step. Replicated over `make_mesh()`'s devices.
    """
    tx = make_optimizer(config.train, steps_per_epoch)
    # Placed on every device of every process: a multi-host run cannot place a process-local
    # array on the global mesh afterwards (jax.device_put returns a broken array there).
    replicated = NamedSharding(make_mesh(), P())
    init = jax.jit(lambda x: _initial_state(model, config, tx, x), out_shardings=replicated)
    state = init(np.asarray(example))
    return state, tx


def abstract_state(
    model: NRI, config: ml_collections.ConfigDict, example: np.ndarray
) -> TrainState:
    """Shapes, dtypes and placement of `init_state`'s state, computing nothing: a restore target."""
    tx = make_optimizer(config.train, steps_per_epoch=1)
    shapes = jax.eval_shape(lambda x: _initial_state(model, config, tx, x), example)
    replicated = NamedSharding(make_mesh(), P())
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), shapes
    )
