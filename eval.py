"""Evaluate a trained run on its test split: `python eval.py --workdir runs/springs5`.

Prints a table and writes DIR/eval.json (edge_accuracy, edge_accuracy_raw, edge_auroc, nll,
kl, mse_per_step; edge figures only where the test split has edge labels). See
nri_jax/evaluation.py for the protocol, docs/usage.md for own data.
"""

import sys

from nri_jax import host_memory

if __name__ == "__main__":
    # XLA:CPU's large buffers in 2 MiB pages. First thing: the restarted program repeats
    # every import made before it (jax's take ~1.7 s).
    host_memory.restart_with_huge_pages()

from absl import app, flags  # noqa: E402

from nri_jax import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A directory written by train.py.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Evaluate on the test split in this folder (training normalisation)."
)
_OUTPUT = flags.DEFINE_string(
    "output",
    None,
    "Write the JSON here instead of DIR/eval.json (with --data_dir: DIR/eval_<its folder>.json).",
)
_PLOTS = flags.DEFINE_bool("plots", False, "Write PNG plots to DIR/plots.")
_DYNAMIC = flags.DEFINE_bool(
    "dynamic_graph", False, "RNN decoder: re-infer the graph on a sliding window (paper §5.2)."
)
_STEPS = flags.DEFINE_integer(
    "prediction_steps",
    None,
    "Table 2 horizon (default: the run's config.eval.prediction_steps; 0: all that fit).",
)
flags.mark_flags_as_required(["workdir"])


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]}")
    from nri_jax.evaluation import evaluate, format_table

    with cli.one_line_errors():
        result = evaluate(
            _WORKDIR.value,
            data_dir=_DATA_DIR.value,
            output=_OUTPUT.value,
            plots=_PLOTS.value,
            dynamic_graph=_DYNAMIC.value,
            prediction_steps=_STEPS.value,
        )
        print(format_table(result))


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
