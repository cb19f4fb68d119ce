"""The config: defaults for the files in `configs/` (the paper's settings, REFERENCE.md §1-3)
and every check of its values.

The files in `configs/` call `base_config(system)` and change only what differs; every key is
listed here once, grouped as the Flax examples group them. `check_config` (the whole job) and
`check_data_config` (dataset generation) raise a one-line ValueError naming the key, before
any work. Model names (encoder, decoder, graph, message implementation, dtype) are checked
where the model is built, `nri_jax.model.make_model`. This module imports no jax: config files
load it while flags are parsed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ml_collections

SYSTEMS = ("springs", "charged", "kuramoto")  # the simulated systems (nri_jax.generate)
# Interaction-graph families (simulators/graphs.py) and each one's config.data keys; the keys
# are the family's parameters with the family's name in front (but edge_prob for 'er').
GRAPHS = {
    "er": ("edge_prob",),
    "ba": ("ba_m",),
    "ws": ("ws_k", "ws_beta"),
    "sbm": ("sbm_blocks", "sbm_p_in", "sbm_p_out"),
}
GRAPH_SYSTEMS = ("springs", "kuramoto")  # charged: every pair interacts (edge types = signs)
# The defaults, also what a dataset whose manifest predates a key was generated with.
GRAPH_DEFAULTS = {
    "graph": "er",  # the paper's
    "edge_prob": 0.5,
    "ba_m": 2,
    "ws_k": 2,
    "ws_beta": 0.2,
    "sbm_blocks": 2,
    "sbm_p_in": 0.8,
    "sbm_p_out": 0.1,
}
SPRING_DEFAULTS = {"spring_constants": (0.0, 0.1), "type_probs": ()}
# config.data.system for a user's own trajectories (nri_jax/own_data.py, configs/own_data.py):
# nothing is simulated; objects, dims and frames are read from the files.
OWN = "own"


def base_config(system: str) -> ml_collections.ConfigDict:
    """Paper defaults for `system` (one of `SYSTEMS`, or `OWN` for a user's own data)."""
    if system not in (*SYSTEMS, OWN):
        raise ValueError(
            f"config.data.system: unknown system {system!r}; use one of {(*SYSTEMS, OWN)}"
        )
    config = ml_collections.ConfigDict()
    config.seed = 0  # Training seed (initialisation, shuffling, Gumbel noise).

    # Data.
    config.data = data = ml_collections.ConfigDict()
    data.system = system
    if system == OWN:
        # A folder of train.npz / valid.npz / test.npz (nri_jax/own_data.py): nothing is
        # generated, so sample counts and the simulators' keys are absent. num_objects = 0:
        # as the files hold (a run's stored config records the number read).
        data.num_objects = 0
        data.dir = ""  # --config.data.dir=DIR; empty for in-memory arrays (nri_jax.fit)
    else:
        data.num_objects = 5
        data.num_train = 50000
        data.num_valid = 10000
        data.num_test = 10000
        data.seed = 42
        data.dir = "data"
    if system == "kuramoto":
        # Integration grid of dt = 0.01 read out every 10th point; train/valid are the first
        # 49 frames of test-length (99-frame) sequences (REFERENCE.md §1).
        data.length = 500
        data.length_test = 1000
        data.sample_freq = 10
        data.dt = 0.01
        # Model frames: the successors' 4 features, or 'phase' = [cos phi, sin phi, omega,
        # d(phi)/dt] from the raw phase/omega/dphase files (the sim decoder's, sim_decoder.py).
        data.features = "successors"
    elif system != OWN:
        # 5000 / 10000 steps of dt = 0.001, every 100th recorded: 49 / 99 frames.
        data.length = 5000
        data.length_test = 10000
        data.sample_freq = 100
        data.dt = 0.001
    if system in GRAPH_SYSTEMS:
        # Interaction graphs (simulators/graphs.py): 'er' (each pair joined with probability
        # edge_prob; Kuramoto: each ordered pair) | 'ba' (Barabasi-Albert, each new object
        # joins ba_m earlier ones) | 'ws' (Watts-Strogatz ring of degree ws_k, each edge
        # rewired with probability ws_beta) | 'sbm' (sbm_blocks contiguous blocks, pairs joined
        # with probability sbm_p_in within a block, sbm_p_out between).
        data.update(GRAPH_DEFAULTS)
    if system == "springs":
        # Spring constant of each edge type, type 0 = no spring (K = its length; train with
        # model.edge_types >= K). Each joined pair draws a type among 1..K-1 uniformly, or with
        # the K - 1 probabilities type_probs; () = uniform.
        data.update(SPRING_DEFAULTS)

    # Model.
    config.model = model = ml_collections.ConfigDict()
    # The paper's baselines in place of NRI (nri_jax/baselines.py): none (NRI) | static |
    # lstm_single | lstm_joint | corr_path | corr_lstm. The LSTMs use model.hidden (H).
    model.baseline = "none"
    model.encoder = "mlp"  # mlp | cnn
    model.decoder = "mlp"  # mlp | rnn | sim
    model.graph = "learned"  # learned | true | full
    model.edge_types = 2
    model.hidden = 256  # Encoder hidden units.
    model.decoder_hidden = 256
    model.factor = True  # Factor-graph encoder (eqs. 5-8) rather than edge-only.
    model.skip_first = False  # Edge type 0 hard-coded as "no interaction".
    # Frames the MLP decoder sees per step: 1 (the paper's, eqs. 10-12) or 2 (also the last
    # change x^t - x^{t-1}, for states that do not tell their direction of motion). The RNN
    # and sim decoders read the history or the physics instead and ignore it.
    model.decoder_frames = 1
    model.prior = "uniform"  # uniform | sparse (p(type 0) = 0.91, REFERENCE.md §3)
    model.dropout = 0.0
    # Decoder message implementation (nri_jax/decoders.py): 'auto' runs the fused fast path
    # (nri_jax/fused_messages.py) on CPU, where it measured faster, and 'plain' elsewhere.
    model.messages = "auto"  # auto | plain | fused
    # The encoder's and decoder's matmul operands (nri_jax/precision.py): float32 | bfloat16.
    # Parameters, optimiser state, activations, the residual x + delta, losses and metrics are
    # float32 either way; the baselines and the sim decoder compute in float32.
    model.dtype = "float32"
    # Simulation decoder (model.decoder = 'sim', nri_jax/sim_decoder.py): integration steps per
    # frame (particles: 100 = the generator's dt = 0.001, as the original's charged decoder;
    # its springs decoder took 1 step of 0.1; Kuramoto: fixed Dopri5 steps) and the
    # charged-force softening length inside the decoder only: 0.1 for charged, where the
    # unsoftened force's gradients kept the encoder at chance (docs/results.md).
    model.sim_steps = 2 if system == "kuramoto" else 100
    model.sim_softening = 0.1 if system == "charged" else 0.0

    # Optimisation.
    config.train = train = ml_collections.ConfigDict()
    train.mode = "unsupervised"  # unsupervised | supervised
    train.epochs = 500
    train.batch_size = 128
    train.lr = 5e-4
    # 'step': multiplied by lr_decay every lr_decay_epochs epochs (the paper's: halved every
    # 200); 'cosine': cosine decay from lr to 0 over all epochs (lr_decay* unused).
    train.lr_schedule = "step"
    train.lr_decay_epochs = 200
    train.lr_decay = 0.5
    train.temperature = 0.5  # Gumbel-softmax tau (eq. 9).
    train.hard = False  # Straight-through hard samples in training.
    train.prediction_steps = 10  # M of section 3.4.
    train.var = 5e-5  # Fixed output variance sigma^2 (eq. 18).
    # Frames the encoder sees and training decodes (the first of each trajectory). Own data: 0
    # = every frame of train.npz (data.resolve_own_config; docs/usage.md).
    train.timesteps = 0 if system == OWN else 49
    # Also checkpoint every this many train steps inside an epoch (0: at epochs' ends only); a
    # run killed between two resumes from the later with the same batch order and metrics.
    train.checkpoint_every_steps = 0
    # A progress line every this many steps (0: none by count). Without a terminal on stdout
    # a line is printed at least every minute anyway (nri_jax/progress.py).
    train.log_every_steps = 0
    # Before compiling, estimate a train step's memory from traced shapes and refuse a batch
    # that would not fit, naming one that does (nri_jax/memory.py); False skips the estimate.
    train.check_memory = True

    # Evaluation.
    config.eval = evaluation = ml_collections.ConfigDict()
    # Table 2 horizon: frames predicted from true frame train.timesteps on; 0 = every frame the
    # test split holds after it (none if it has no more). Own data: 0, its lengths are the user's.
    evaluation.prediction_steps = 0 if system == OWN else 20
    evaluation.batch_size = 256
    return config


def cpu_protocol(system: str) -> ml_collections.ConfigDict:
    """`base_config(system)` at the CPU protocols' sizes and optimisation (configs/*_cpu.py,
    docs/cpu_protocols.md): what a 2-core CPU trains in under 30 minutes.

    Chosen on springs5, where it reaches 99%: the paper's model and loss with a narrower
    decoder, smaller batches, a higher learning rate with cosine decay, a softer Gumbel-softmax
    and fewer epochs, so that the encoder gets the thousands of Adam steps it needs to leave the
    ~50% plateau within minutes.
    """
    config = base_config(system)
    # Data: paper-size test split; training draws from 10k trajectories.
    config.data.num_train = 10000
    config.data.num_valid = 2000
    config.data.num_test = 10000
    config.data.dir = f"data/{system}_cpu"
    # Model: the paper's encoder; a narrower decoder (it holds ~95% of the matmul work).
    config.model.hidden = 256
    config.model.decoder_hidden = 64
    # Optimisation: twice the paper's learning rate, cosine-decayed to 0 over the run (rather
    # than halved every 200 epochs). The springs step takes 70-90 ms with the 64-unit decoder
    # (docs/benchmarks.md) against 240 ms for 128 units, so 46 epochs (7176 steps) fit; at 36
    # epochs every schedule tried stopped at ~98.7%, at 40 at 98.97% (docs/cpu_protocols.md).
    config.train.epochs = 46
    config.train.batch_size = 64
    config.train.lr = 1e-3
    config.train.lr_schedule = "cosine"
    # Gumbel-softmax tau 1 rather than the paper's 0.5: on this budget the springs encoder
    # leaves the ~50% plateau two epochs sooner (88% against 64% validation accuracy after 5).
    config.train.temperature = 1.0
    return config


# ----------------------------------------------------------------------------------------------
# Checks.

LR_SCHEDULES = ("step", "cosine")
MODES = ("unsupervised", "supervised")
PRIORS = ("uniform", "sparse")
KURAMOTO_FEATURES = ("successors", "phase")
CNN_MIN_FRAMES = 14  # the CNN encoder's shortest input


def choice(name: str, value: Any, allowed: tuple) -> None:
    """One-line ValueError unless `value` (config key `name`) is one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"config.{name}={value!r} is not one of {', '.join(map(repr, allowed))}")


def _at_least(name: str, value: Any, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ValueError(f"config.{name}={value!r} must be a number >= {minimum}")


def _integer(name: str, value: Any, minimum: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"config.{name}={value!r} must be an integer >= {minimum}{why}")


def num_frames(length: int, sample_freq: int) -> int:
    """Recorded frames of a `length`-step run: steps sample_freq, 2 sample_freq, ... < length."""
    return length // sample_freq - 1


def _probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"config.{name}={value!r} must be a probability in [0, 1]")


def _check_graph(data: Mapping) -> None:
    """data.graph and its family's keys; none of them for charged particles."""
    system, n = data["system"], data["num_objects"]
    if system not in GRAPH_SYSTEMS:
        present = [key for key in GRAPH_DEFAULTS if key in data]
        if present:
            raise ValueError(
                f"config.data.{present[0]}: charged particles all interact (their edge types "
                f"are charge signs); graph families are for springs and kuramoto, remove it"
            )
        return
    graph = data.get("graph", "er")
    choice("data.graph", graph, tuple(GRAPHS))
    value = {key: data.get(key, GRAPH_DEFAULTS[key]) for key in GRAPHS[graph]}
    if graph == "er":
        _probability("data.edge_prob", value["edge_prob"])
    elif graph == "ba":
        _integer("data.ba_m", value["ba_m"], 1)
        if value["ba_m"] >= n:
            raise ValueError(
                f"config.data.ba_m={value['ba_m']} must be smaller than config.data."
                f"num_objects={n} (each new object joins ba_m earlier ones)"
            )
    elif graph == "ws":
        k = value["ws_k"]
        _integer("data.ws_k", k, 2)
        if k % 2 or k >= n:
            raise ValueError(
                f"config.data.ws_k={k} must be even and smaller than config.data.num_objects="
                f"{n} (each object starts joined to ws_k / 2 neighbours on either side)"
            )
        _probability("data.ws_beta", value["ws_beta"])
    else:
        _integer("data.sbm_blocks", value["sbm_blocks"], 1)
        if value["sbm_blocks"] > n:
            raise ValueError(
                f"config.data.sbm_blocks={value['sbm_blocks']} must not exceed config.data."
                f"num_objects={n}"
            )
        _probability("data.sbm_p_in", value["sbm_p_in"])
        _probability("data.sbm_p_out", value["sbm_p_out"])


def spring_types(data: Mapping) -> int:
    """K, the number of edge types of a springs dataset (2, the paper's, for other systems)."""
    return len(data.get("spring_constants", SPRING_DEFAULTS["spring_constants"]))


def _check_edge_types(data: Mapping) -> None:
    """data.spring_constants (0 first, then positive) and data.type_probs (springs only)."""
    if data["system"] != "springs":
        for key in SPRING_DEFAULTS:
            if key in data:
                raise ValueError(
                    f"config.data.{key}: edge types with their own spring constants are for "
                    f"springs; remove it for {data['system']}"
                )
        return
    constants = data.get("spring_constants", SPRING_DEFAULTS["spring_constants"])
    numbers = isinstance(constants, list | tuple) and all(
        isinstance(c, int | float) and not isinstance(c, bool) for c in constants
    )
    if not numbers or len(constants) < 2 or constants[0] != 0:
        raise ValueError(
            f"config.data.spring_constants={constants!r} must be a tuple (0.0, k_1, ...): "
            f"type 0 is no spring, e.g. (0.0, 0.1) (the paper's) or (0.0, 0.1, 1.0)"
        )
    if not all(0 < c < math.inf for c in constants[1:]):
        raise ValueError(
            f"config.data.spring_constants={constants!r}: the spring constants after the "
            f"first 0 must be positive numbers"
        )
    probs = data.get("type_probs", ())
    if not isinstance(probs, list | tuple) or (
        probs
        and (
            len(probs) != len(constants) - 1
            or not all(isinstance(p, int | float) and 0 <= p <= 1 for p in probs)
            or abs(sum(probs) - 1) > 1e-6
        )
    ):
        raise ValueError(
            f"config.data.type_probs={probs!r} must be () (uniform) or {len(constants) - 1} "
            f"probabilities of the spring types 1..{len(constants) - 1}, summing to 1"
        )


def check_data_config(data: Mapping) -> None:
    """`config.data`: a known system, sizes >= 0 (num_train = 0 writes or reads no training
    split, e.g. a new test split for a trained run), lengths that give frames, dt > 0, a known
    graph family with valid parameters, springs' edge types."""
    if data.get("system") == OWN:
        raise ValueError(
            "config.data.system='own': own data is read from config.data.dir as it is; there "
            "is nothing to generate (docs/usage.md)"
        )
    for field in ("system", "num_objects", "num_train", "num_valid", "num_test", "seed", "dir"):
        if field not in data:
            raise ValueError(f"config.data.{field}: missing")
    choice("data.system", data["system"], SYSTEMS)
    choice("data.features", data.get("features", "successors"), KURAMOTO_FEATURES)
    _integer("data.num_objects", data["num_objects"], 2)
    for split in ("train", "valid", "test"):
        _integer(f"data.num_{split}", data[f"num_{split}"], 0)
    _integer("data.seed", data["seed"], 0)
    _integer("data.sample_freq", data["sample_freq"], 1)
    sample_freq = data["sample_freq"]
    for field in ("length", "length_test"):
        length = data[field]
        _integer(f"data.{field}", length, 1)
        if length % sample_freq or num_frames(length, sample_freq) < 1:
            raise ValueError(
                f"config.data.{field}={length} must be a multiple of sample_freq={sample_freq} "
                f"of at least {2 * sample_freq} (frames are steps sample_freq, 2 sample_freq, "
                f"... < length)"
            )
    dt = data["dt"]
    if isinstance(dt, bool) or not isinstance(dt, int | float) or not 0 < dt < math.inf:
        raise ValueError(f"config.data.dt={dt!r} must be a positive number")
    _check_graph(data)
    _check_edge_types(data)


def check_own_data_config(config: Mapping) -> None:
    """`config.data` of a user's own data (`OWN`), after `data.resolve_own_config` has read
    objects and frames from the files; the sim decoder simulates the paper's systems only."""
    data = config["data"]
    _integer("data.num_objects", data["num_objects"], 2)
    if config["model"]["decoder"] == "sim":
        raise ValueError(
            "config.model.decoder='sim' simulates springs, charged or kuramoto; own data "
            "(config.data.system='own') needs config.model.decoder='mlp' or 'rnn'"
        )


def _check_sim_decoder(config: Mapping) -> None:
    model, data = config["model"], config["data"]
    if model["decoder"] != "sim":
        return
    if data["system"] == "kuramoto" and data.get("features", "successors") != "phase":
        raise ValueError(
            "config.model.decoder='sim' on Kuramoto needs the raw phases: set "
            "config.data.features='phase' (see nri_jax/sim_decoder.py)"
        )
    if model["edge_types"] != 2:
        raise ValueError(
            f"config.model.decoder='sim' needs config.model.edge_types=2, not "
            f"{model['edge_types']} (type 1 is the interaction)"
        )
    constants = tuple(data.get("spring_constants", SPRING_DEFAULTS["spring_constants"]))
    if data["system"] == "springs" and constants != SPRING_DEFAULTS["spring_constants"]:
        raise ValueError(
            f"config.model.decoder='sim' simulates the paper's springs (k = 0.1); "
            f"config.data.spring_constants={constants!r} needs config.model.decoder='mlp' or 'rnn'"
        )
    _integer("model.sim_steps", model.get("sim_steps", 100), 1)
    _at_least("model.sim_softening", model.get("sim_softening", 0.0), 0.0)


def check_config(config: ml_collections.ConfigDict, num_devices: int | None = None) -> None:
    """One-line ValueError naming the key for any setting the training job cannot run with.

    `num_devices` (default: jax.device_count()) is what the batch is sharded over.
    """
    model, train = config.model, config.train
    if config.data.system == OWN:
        check_own_data_config(config)
    else:
        check_data_config(config.data)
        if config.data.num_train < 1 or config.data.num_valid < 1:
            raise ValueError(
                f"config.data.num_train={config.data.num_train}, num_valid="
                f"{config.data.num_valid}: training needs both splits (0 only generates or "
                f"evaluates other splits)"
            )
    choice("model.prior", model.prior, PRIORS)
    choice("train.mode", train.mode, MODES)
    choice("train.lr_schedule", train.get("lr_schedule", "step"), LR_SCHEDULES)
    _integer("model.edge_types", model.edge_types, 2)
    _integer("model.hidden", model.hidden, 1)
    _integer("model.decoder_hidden", model.decoder_hidden, 1)
    if model.get("decoder_frames", 1) not in (1, 2):
        raise ValueError(
            f"config.model.decoder_frames={model.decoder_frames!r} must be 1 or 2 (the frames "
            f"the MLP decoder sees per step)"
        )
    _integer("train.epochs", train.epochs, 0)
    _integer("train.batch_size", train.batch_size, 1)
    _integer("train.prediction_steps", train.prediction_steps, 1)
    _integer("train.timesteps", train.timesteps, 2)
    _integer("train.checkpoint_every_steps", train.get("checkpoint_every_steps", 0), 0)
    _integer("train.log_every_steps", train.get("log_every_steps", 0), 0)
    _integer("eval.prediction_steps", config.eval.prediction_steps, 0, " (0: all that fit)")
    _integer("eval.batch_size", config.eval.batch_size, 1)
    _at_least("train.temperature", train.temperature, 1e-6)
    _at_least("train.var", train.var, 1e-12)
    if not 0.0 <= model.dropout < 1.0:
        raise ValueError(f"config.model.dropout={model.dropout!r} must lie in [0, 1)")
    if train.prediction_steps >= train.timesteps:
        raise ValueError(
            f"config.train.prediction_steps={train.prediction_steps} must be smaller than "
            f"config.train.timesteps={train.timesteps}"
        )
    if config.data.system == "springs" and model.edge_types < spring_types(config.data):
        raise ValueError(
            f"config.model.edge_types={model.edge_types} is fewer than the "
            f"{spring_types(config.data)} edge types of config.data.spring_constants="
            f"{tuple(config.data.spring_constants)}; set config.model.edge_types="
            f"{spring_types(config.data)}"
        )
    if model.encoder == "cnn" and train.timesteps < CNN_MIN_FRAMES:
        # Two VALID convolutions of width 5 around a stride-2 pool (layers.AttentionCNN).
        raise ValueError(
            f"config.model.encoder='cnn' needs config.train.timesteps >= {CNN_MIN_FRAMES}, "
            f"not {train.timesteps}; use more frames or config.model.encoder='mlp'"
        )
    _check_sim_decoder(config)
    if model.get("baseline", "none") != "none" and train.mode != "unsupervised":
        raise ValueError(
            f"config.model.baseline={model.baseline!r} trains on the NLL alone: "
            f"config.train.mode must be 'unsupervised', not {train.mode!r}"
        )
    if num_devices is None:
        import jax

        num_devices = jax.device_count()
    if train.batch_size % num_devices:
        raise ValueError(
            f"config.train.batch_size={train.batch_size} must be a multiple of the "
            f"{num_devices} devices it is sharded over"
        )
