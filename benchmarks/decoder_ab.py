"""A/B timing of the MLP decoder's forward + backward from two checkouts, in one process.

    git worktree add /tmp/nri_base <commit>
    python benchmarks/decoder_ab.py --base /tmp/nri_base --batch 128 --hidden 256 --repeats 9

Loads `nri_jax/decoders.py` from `--base` and from this checkout as two modules, builds the same
jitted `jax.value_and_grad` of the MLP decoder (M = 10, 5 objects, 49 frames, 2 edge types) for
each, checks that both compute the same loss and gradients, and times the compiled calls
interleaved, so both see the same background load (this machine's timings drift by 10% or more
between runs). Prints the median and minimum per checkout in ms.
"""

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from absl import app, flags  # noqa: E402
from decoder_timing import compiled_gradient, decoder_inputs, time_interleaved  # noqa: E402

from nri_jax.host_memory import restart_with_huge_pages  # noqa: E402

_BASE = flags.DEFINE_string("base", None, "Root of the other checkout.", required=True)
_BATCH = flags.DEFINE_integer("batch", 128, "Trajectories per batch.")
_HIDDEN = flags.DEFINE_integer("hidden", 256, "Decoder hidden units.")
_REPEATS = flags.DEFINE_integer("repeats", 9, "Timed calls per checkout.")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # flax's dataclass transform looks the module up
    spec.loader.exec_module(module)
    return module


def main(argv):
    del argv
    restart_with_huge_pages()  # as train.py does
    base = Path(_BASE.value) / "nri_jax" / "decoders.py"
    if not base.is_file():
        raise SystemExit(f"--base {_BASE.value}: no nri_jax/decoders.py there; pass a checkout")
    here = Path(__file__).resolve().parents[1] / "nri_jax" / "decoders.py"
    modules = {"base": _load(base, "decoders_base"), "this": _load(here, "decoders_this")}
    x, z = decoder_inputs(_BATCH.value)
    calls = {
        name: compiled_gradient(module.MLPDecoder(2, _HIDDEN.value), x, z)
        for name, module in modules.items()
    }
    differences = jax.tree.map(
        lambda a, b: float(jnp.max(jnp.abs(a - b))), calls["base"](), calls["this"]()
    )
    print(f"largest difference in loss and gradients: {max(jax.tree.leaves(differences)):.3g}")
    time_interleaved(calls, _REPEATS.value)


if __name__ == "__main__":
    app.run(main)
