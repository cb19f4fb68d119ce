"""Every run of the paper's Tables 1 and 2, then the tables with the paper's figures beside ours.

    python -m nri_jax.reproduce --protocol smoke --out runs/reproduce_smoke
    python -m nri_jax.reproduce --protocol cpu --systems kuramoto --out runs/reproduce_cpu
    python -m nri_jax.reproduce --protocol paper --systems springs,charged,kuramoto \\
        --objects 5,10 --seeds 0,1,2,3,4 --out runs/reproduce_paper

Protocols (the per-system configs are read from `--configs`, the repository's `configs/`):
- `smoke`: tiny data and one epoch per run; checks the wiring of every row in minutes.
- `cpu`: the CPU protocols (`configs/{system}_cpu.py`); NRI (learned) at its config's epochs,
  the other trained rows at the shorter budgets of `CPU_EPOCHS`, so that one system fits one
  sitting on a 2-core machine.
- `paper`: the paper's settings (`configs/{system}.py`: 50k / 10k / 10k, 500 epochs).

Each run trains with `train.py`'s code into `OUT/runs/{system}{N}/seed{S}/{row}` and is then
evaluated as `eval.py` would; a run whose `eval.json` exists is reused, and a killed run resumes
from its latest checkpoint, so rerunning the command continues. Data go to
`OUT/data/{system}{N}`. The results are `OUT/results.md` (the paper's tables, ours beside the
paper's, mean ± standard error over seeds), `OUT/results.json` and `OUT/mse_{system}{N}.png`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import ml_collections

from nri_jax import atomic, paper_results
from nri_jax.config import SYSTEMS

PROTOCOLS = ("smoke", "cpu", "paper")
ROWS = (
    "learned",
    "supervised",
    "sim",
    "true_graph",
    "full_graph",
    "static",
    "lstm_single",
    "lstm_joint",
    "corr_path",
    "corr_lstm",
)
# What each row changes in the system's config (the NRI (sim.) rows add SIM_OVERRIDES).
ROW_OVERRIDES = {
    "learned": {},
    "supervised": {"train.mode": "supervised"},
    "sim": {"model.decoder": "sim"},
    "true_graph": {"model.graph": "true"},
    "full_graph": {"model.graph": "full"},
    "static": {"model.baseline": "static"},
    "lstm_single": {"model.baseline": "lstm_single"},
    "lstm_joint": {"model.baseline": "lstm_joint"},
    "corr_path": {"model.baseline": "corr_path"},
    "corr_lstm": {"model.baseline": "corr_lstm"},
}
# NRI (sim.): Kuramoto's simulator needs the raw phases (docs/results.md); charged predicts one
# step from each true frame, as the original's simulation decoder did.
SIM_OVERRIDES = {
    "springs": {},
    "charged": {"train.prediction_steps": 1},
    "kuramoto": {"data.features": "phase"},
}
# The cpu protocol's epochs for the rows other than NRI (learned) (which keeps its config's).
CPU_EPOCHS = {
    "supervised": 10,
    "sim": 5,
    "true_graph": 10,
    "full_graph": 10,
    "lstm_single": 4,
    "lstm_joint": 2,  # width N * H: ~370 s per springs5 epoch on 2 cores
    "corr_lstm": 4,
}
# What the cpu protocol changes further for one system's rows. Kuramoto NRI (sim.): on the raw
# phases the CNN encoder (128 units, the paper's variance) reads the couplings where the MLP one
# does not, at 90.25% validation after 16 epochs and 90.53% after 20 (docs/results.md,
# note 5). The Kuramoto LSTMs stay at width 128 (the config's encoder width): at 256 the
# three LSTM rows take ~1 hour on 2 cores, beyond the protocol's 75 minutes per system (note 13).
_KURAMOTO_LSTM = {"model.hidden": 128}
CPU_OVERRIDES_BY_SYSTEM = {
    "kuramoto": {
        "sim": {
            "model.encoder": "cnn",
            "model.hidden": 128,
            "train.var": 5e-5,
            "train.epochs": 20,
        },
        "lstm_single": _KURAMOTO_LSTM,
        "lstm_joint": _KURAMOTO_LSTM,
        "corr_lstm": _KURAMOTO_LSTM,
    }
}


@dataclasses.dataclass(frozen=True)
class Run:
    system: str
    objects: int
    seed: int
    row: str
    config: ml_collections.ConfigDict = dataclasses.field(compare=False)  # not hashable
    workdir: Path = Path()


def _load_config_file(path: Path) -> ml_collections.ConfigDict:
    if not path.is_file():
        raise ValueError(f"--configs: {path} not found; run from the repository or pass --configs")
    spec = importlib.util.spec_from_file_location(f"_nri_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


_SMOKE_WIDTH = 16


def _shrink(config: ml_collections.ConfigDict) -> None:
    """Smoke sizes: seconds per run. The protocol config's encoder and decoder stay, so every
    code path runs, and so does Table 2's 20-step horizon."""
    data, model, train = config.data, config.model, config.train
    data.num_train, data.num_valid, data.num_test = 32, 16, 16
    # 15 training frames (the CNN encoder's minimum is 14); 39 test frames (15 seen, 20 more).
    data.length, data.length_test = 16 * data.sample_freq, 40 * data.sample_freq
    model.hidden = model.decoder_hidden = _SMOKE_WIDTH
    train.epochs, train.batch_size = 1, 8
    train.timesteps, train.prediction_steps = 15, 3
    config.eval.batch_size = 8
    if data.system == "kuramoto":
        model.sim_steps = 1


def protocol_config(
    protocol: str, system: str, objects: int, configs_dir: Path, out: Path
) -> ml_collections.ConfigDict:
    """The NRI (learned) config of `system` with `objects` objects under `protocol`."""
    name = system if protocol == "paper" else f"{system}_cpu"
    config = _load_config_file(configs_dir / f"{name}.py")
    if protocol == "smoke":
        _shrink(config)
    config.data.num_objects = objects
    config.data.dir = str(out / "data" / f"{system}{objects}")
    return config


def row_config(
    base: ml_collections.ConfigDict, protocol: str, row: str, seed: int
) -> ml_collections.ConfigDict:
    """`base` changed for one row of the tables and one training seed."""
    config = ml_collections.ConfigDict(base.to_dict())
    config.seed = seed
    overrides = dict(ROW_OVERRIDES[row])
    if row == "sim":
        overrides |= SIM_OVERRIDES[config.data.system]
    config.update_from_flattened_dict(overrides)
    if protocol == "cpu":
        if row in CPU_EPOCHS:
            config.train.epochs = CPU_EPOCHS[row]  # the configs' cosine schedules follow them
        config.update_from_flattened_dict(
            CPU_OVERRIDES_BY_SYSTEM.get(config.data.system, {}).get(row, {})
        )
    if protocol == "smoke":
        config.model.hidden = config.model.decoder_hidden = _SMOKE_WIDTH  # whatever the row set
    return config


def plan(
    protocol: str,
    systems: Sequence[str],
    objects: Sequence[int],
    seeds: Sequence[int],
    out: Path,
    configs_dir: Path,
    rows: Sequence[str] = ROWS,
) -> list[Run]:
    """Every run, in order: by system, object count, seed, then row."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"--protocol={protocol!r} is not one of {', '.join(PROTOCOLS)}")
    for system in systems:
        if system not in SYSTEMS:
            raise ValueError(f"--systems: unknown system {system!r}; use some of {SYSTEMS}")
    for row in rows:
        if row not in ROWS:
            raise ValueError(f"--rows: unknown row {row!r}; use some of {', '.join(ROWS)}")
    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    runs = []
    for system in systems:
        for n in objects:
            if n < 2:
                raise ValueError(f"--objects={n}: need at least 2 objects")
            base = protocol_config(protocol, system, n, configs_dir, out)
            for seed in seeds:
                for row in rows:
                    workdir = out / "runs" / f"{system}{n}" / f"seed{seed}" / row
                    runs.append(
                        Run(system, n, seed, row, row_config(base, protocol, row, seed), workdir)
                    )
    return runs


def execute(run: Run) -> dict:
    """Train (or resume) and evaluate one run; its eval.json dict."""
    from nri_jax.evaluation import evaluate
    from nri_jax.training import train_and_evaluate

    train_and_evaluate(run.config, run.workdir)
    return evaluate(run.workdir)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _check_same_config(run: Run) -> None:
    """A finished run is reused only if it ran the planned config (say, not another protocol's)."""
    saved_path = run.workdir / "config.json"
    saved = json.loads(saved_path.read_text()) if saved_path.is_file() else {}
    planned = json.loads(run.config.to_json())
    for group, values in planned.items():
        for key, value in values.items() if isinstance(values, dict) else [(None, values)]:
            old = saved.get(group, {}).get(key) if key else saved.get(group)
            if old != value:
                name = f"{group}.{key}" if key else group
                raise ValueError(
                    f"{run.workdir} was run with config.{name}={old!r}, not {value!r}: "
                    "use another --out for another protocol or settings"
                )


def run_all(runs: Sequence[Run], log=print) -> dict[Run, dict]:
    """Execute `runs`, reusing finished ones; prints `run i of n` lines with elapsed time and
    an estimate of the time left (the mean of this invocation's runs so far)."""
    results, start, timed = {}, time.perf_counter(), []
    for i, run in enumerate(runs, 1):
        name = f"{run.system}{run.objects} seed {run.seed} {run.row}"
        eval_path = run.workdir / "eval.json"
        if eval_path.is_file():
            _check_same_config(run)
            results[run] = json.loads(eval_path.read_text())
            log(f"run {i} of {len(runs)}: {name}: done earlier, reused")
            continue
        elapsed = time.perf_counter() - start
        left = len([r for r in runs[i - 1 :] if not (r.workdir / "eval.json").is_file()])
        estimate = f", about {_clock(left * sum(timed) / len(timed))} left" if timed else ""
        log(f"run {i} of {len(runs)}: {name} (elapsed {_clock(elapsed)}{estimate})")
        began = time.perf_counter()
        results[run] = execute(run)
        timed.append(time.perf_counter() - began)
    log(f"{len(runs)} runs finished in {_clock(time.perf_counter() - start)}")
    return results


def finished_runs(out: Path) -> dict[Run, dict]:
    """Every run in `out` with an eval.json, also those of earlier invocations (other systems,
    seeds or rows), so that results.md covers all that `out` holds."""
    found = {}
    for path in sorted((out / "runs").glob("*/seed*/*/eval.json")):
        group, seed, row = path.parts[-4:-1]
        system = group.rstrip("0123456789")
        if system not in SYSTEMS or row not in ROWS or not group[len(system) :].isdigit():
            continue
        run = Run(system, int(group[len(system) :]), int(seed[4:]), row, None, path.parent)
        found[run] = json.loads(path.read_text())
    return found


def _mean_se(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error (sample standard deviation / sqrt(n)); None for one value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def summarise(results: dict[Run, dict]) -> dict:
    """results.json: per system and object count, Table 1 accuracies (%) and Table 2 MSEs at
    1 / 10 / 20 steps, each as mean, standard error and the per-seed values, with the paper's."""
    groups: dict[tuple[str, int], dict[str, list[dict]]] = {}
    for run, result in results.items():
        groups.setdefault((run.system, run.objects), {}).setdefault(run.row, []).append(result)
    summary = {}
    # Columns in the paper's order: springs, charged, Kuramoto; 5 objects before 10.
    for (system, n), rows in sorted(
        groups.items(), key=lambda g: (g[0][1], SYSTEMS.index(g[0][0]))
    ):
        table1, table2, curves = {}, {}, {}
        for row in paper_results.TABLE1_ROWS:
            values = [100 * r["edge_accuracy"] for r in rows.get(row, []) if "edge_accuracy" in r]
            if values:
                mean, se = _mean_se(values)
                table1[row] = {
                    "mean": mean,
                    "se": se,
                    "values": values,
                    "paper": paper_results.edge_accuracy(row, system, n),
                }
        for row in paper_results.TABLE2_ROWS:
            per_step = [r["mse_per_step"] for r in rows.get(row, []) if "mse_per_step" in r]
            if not per_step:
                continue
            horizon = min(len(p) for p in per_step)
            steps = [s for s in paper_results.MSE_STEPS if s <= horizon]
            cells = [_mean_se([p[s - 1] for p in per_step]) for s in steps]
            table2[row] = {
                "steps": steps,
                "mean": [c[0] for c in cells],
                "se": [c[1] for c in cells],
                "paper": paper_results.mse(row, system, n),
            }
            curves[row] = [_mean_se([p[t] for p in per_step])[0] for t in range(horizon)]
        seeds = sorted({run.seed for run in results if (run.system, run.objects) == (system, n)})
        summary[f"{system}{n}"] = {
            "system": system,
            "objects": n,
            "seeds": seeds,
            "table1": table1,
            "table2": table2,
            "mse_curves": curves,
        }
    return summary


def _cell(mean: float, se: float | None, fmt: str) -> str:
    return format(mean, fmt) + ("" if se is None else f" ± {format(se, fmt)}")


def results_markdown(summary: dict, header: str) -> str:
    keys = list(summary)
    lines = [header, "", "## Table 1: edge accuracy (%), test split", ""]
    lines += ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for row in paper_results.TABLE1_ROWS:
        cells = []
        for key in keys:
            entry = summary[key]["table1"].get(row)
            paper = paper_results.edge_accuracy(
                row, summary[key]["system"], summary[key]["objects"]
            )
            paper_text = "-" if paper is None else f"{paper}"
            ours = "not run" if entry is None else _cell(entry["mean"], entry["se"], ".2f")
            cells.append(f"{ours} (paper {paper_text})")
        lines.append(f"| {paper_results.ROW_NAMES[row]} | " + " | ".join(cells) + " |")
    lines += ["", "## Table 2: future-state MSE at 1 / 10 / 20 steps", ""]
    lines += ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for row in paper_results.TABLE2_ROWS:
        cells = []
        for key in keys:
            entry = summary[key]["table2"].get(row)
            paper = paper_results.mse(row, summary[key]["system"], summary[key]["objects"])
            paper_text = "-" if paper is None else " / ".join(f"{v:.3g}" for v in paper)
            if entry is None:
                ours = "not run"
            else:
                ours = " / ".join(
                    _cell(m, s, ".3g") for m, s in zip(entry["mean"], entry["se"], strict=True)
                )
            cells.append(f"{ours} (paper {paper_text})")
        lines.append(f"| {paper_results.ROW_NAMES[row]} | " + " | ".join(cells) + " |")
    seeds = sorted({s for entry in summary.values() for s in entry["seeds"]})
    lines += [
        "",
        f"Mean ± standard error over seeds {', '.join(map(str, seeds))} (no ± for one seed). "
        "Table 2's MSE is in normalised units from true frame `train.timesteps`; the paper's "
        "figures are 500 epochs on 50k trajectories (Kipf et al. 2018).",
        "",
    ]
    return "\n".join(lines)


def write_mse_plots(summary: dict, out: Path) -> list[Path]:
    """One PNG per system: MSE against prediction step, one line per Table 2 row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    written = []
    for key, entry in summary.items():
        if not entry["mse_curves"]:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for row, curve in entry["mse_curves"].items():
            ax.plot(range(1, len(curve) + 1), curve, marker=".", label=paper_results.ROW_NAMES[row])
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("prediction step")
        ax.set_ylabel("MSE")
        ax.set_title(key)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"mse_{key}.png"
        tmp = path.with_name(path.name + ".tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, path)
        written.append(path)
    return written


def write_results(results: dict[Run, dict], out: Path, header: str) -> dict:
    summary = summarise(results)
    atomic.write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    atomic.write_text(out / "results.md", results_markdown(summary, header))
    write_mse_plots(summary, out)
    return summary


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"{flag}={text!r}: give integers separated by commas, e.g. 0,1,2"
        ) from None


def main(argv: Sequence[str] | None = None) -> dict:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m nri_jax.reproduce", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--protocol", default="smoke", help="|".join(PROTOCOLS))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--objects", default="5", help="e.g. 5 or 5,10")
    parser.add_argument("--seeds", default="0", help="training seeds, e.g. 0,1,2,3,4")
    parser.add_argument("--rows", default=",".join(ROWS), help="a subset of the tables' rows")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--configs", default=Path("configs"), type=Path, help="configs folder")
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    runs = plan(
        args.protocol,
        systems,
        _ints(args.objects, "--objects"),
        _ints(args.seeds, "--seeds"),
        args.out,
        args.configs,
        rows,
    )
    results = finished_runs(args.out) | run_all(runs)
    command = "python -m nri_jax.reproduce " + " ".join(sys.argv[1:] if argv is None else argv)
    header = f"# Results: protocol `{args.protocol}`\n\n`{command}`"
    summary = write_results(results, args.out, header)
    print(f"wrote {args.out / 'results.md'}, results.json and the MSE plots")
    return summary


if __name__ == "__main__":
    from nri_jax import host_memory

    host_memory.restart_with_huge_pages()
    from nri_jax import cli

    with cli.one_line_errors():
        main()
