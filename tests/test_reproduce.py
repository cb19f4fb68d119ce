"""`python -m nri_jax.reproduce`: the plan of runs, the tables' arithmetic, and a smoke run."""

import json
import math
from pathlib import Path

import pytest

from nri_jax import paper_results, reproduce

ROOT = Path(__file__).resolve().parents[1]


def _plan(protocol="smoke", systems=("springs", "charged", "kuramoto"), seeds=(0,), **kw):
    return reproduce.plan(protocol, systems, [5], seeds, Path("/tmp/out"), ROOT / "configs", **kw)


def test_plan_has_every_row_for_every_system_and_seed():
    runs = _plan(seeds=(0, 1))
    assert len(runs) == 3 * 2 * len(reproduce.ROWS)
    assert len({run.workdir for run in runs}) == len(runs)
    by_key = {(r.system, r.seed, r.row): r.config for r in runs}
    # Every row of both tables is planned.
    assert set(paper_results.TABLE1_ROWS) | set(paper_results.TABLE2_ROWS) == set(reproduce.ROWS)
    assert by_key["kuramoto", 0, "sim"].data.features == "phase"
    assert by_key["kuramoto", 0, "learned"].data.features == "successors"
    assert by_key["charged", 1, "sim"].train.prediction_steps == 1
    assert by_key["springs", 1, "supervised"].train.mode == "supervised"
    assert by_key["springs", 0, "true_graph"].model.graph == "true"
    assert by_key["springs", 0, "corr_lstm"].model.baseline == "corr_lstm"
    assert by_key["springs", 1, "learned"].seed == 1
    # The rows share the data of their system.
    assert {r.config.data.dir for r in runs if r.system == "charged"} == {"/tmp/out/data/charged5"}


def test_cpu_protocol_keeps_the_configs_epochs_for_nri_and_shortens_the_others():
    runs = {r.row: r.config for r in _plan("cpu", systems=("springs",))}
    from configs import springs_cpu

    assert runs["learned"].train.epochs == springs_cpu.get_config().train.epochs
    assert runs["lstm_joint"].train.epochs == reproduce.CPU_EPOCHS["lstm_joint"]
    assert runs["learned"].data.num_train == springs_cpu.get_config().data.num_train
    kuramoto = {r.row: r.config for r in _plan("cpu", systems=("kuramoto",))}
    assert kuramoto["sim"].train.epochs == 20
    assert kuramoto["lstm_joint"].model.hidden == 128
    assert kuramoto["lstm_joint"].train.epochs == reproduce.CPU_EPOCHS["lstm_joint"]
    assert kuramoto["sim"].model.encoder == "cnn"
    # The paper protocol's NRI (sim.) keeps its config's encoder.
    paper = {r.row: r.config for r in _plan("paper", systems=("kuramoto",))}
    assert paper["sim"].model.hidden == paper["learned"].model.hidden
    assert kuramoto["supervised"].model.encoder == kuramoto["learned"].model.encoder
    # Smoke sizes hold for every row, whatever the row's overrides widen.
    smoke = {r.row: r.config for r in _plan("smoke", systems=("kuramoto",))}
    assert {c.model.hidden for c in smoke.values()} == {16}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="--protocol"):
        _plan("fast")
    with pytest.raises(ValueError, match="unknown system 'spring'"):
        _plan(systems=("spring",))
    with pytest.raises(ValueError, match="--rows: unknown row 'lstm'"):
        _plan(rows=("lstm",))
    with pytest.raises(ValueError, match="--seeds=.*integers"):
        reproduce.main(["--seeds", "a", "--out", "/tmp/unused"])


def test_summary_is_mean_and_standard_error_over_seeds():
    def run(seed, row):
        return reproduce.Run("charged", 5, seed, row, None, Path(f"/x/{seed}/{row}"))

    results = {
        run(0, "learned"): {"edge_accuracy": 0.80, "mse_per_step": [1.0] * 10 + [3.0] * 10},
        run(1, "learned"): {"edge_accuracy": 0.90, "mse_per_step": [2.0] * 10 + [5.0] * 10},
        run(0, "static"): {"mse_per_step": [4.0] * 20},
    }
    summary = reproduce.summarise(results)["charged5"]
    learned = summary["table1"]["learned"]
    # Two values 80 and 90: mean 85, sample std 7.071, standard error 7.071 / sqrt(2) = 5.
    assert learned["mean"] == pytest.approx(85.0)
    assert learned["se"] == pytest.approx(5.0)
    assert learned["paper"] == 82.1
    table2 = summary["table2"]["learned"]
    assert table2["steps"] == [1, 10, 20]
    assert table2["mean"] == pytest.approx([1.5, 1.5, 4.0])
    assert table2["se"] == pytest.approx([0.5, 0.5, 1.0])
    assert summary["table2"]["static"]["se"] == [None, None, None]
    assert summary["seeds"] == [0, 1]
    text = reproduce.results_markdown({"charged5": summary}, "# t")
    assert "| NRI (learned) | 85.00 ± 5.00 (paper 82.1) |" in text
    assert "| Static | 4 / 4 / 4 (paper 0.00509 / 0.0226 / 0.0542) |" in text
    assert "| Corr. (LSTM) | not run (paper 54.2) |" in text
    assert math.isclose(summary["mse_curves"]["learned"][15], 4.0)


def test_smoke_runs_write_the_tables_and_a_rerun_reuses_them(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = ["--protocol", "smoke", "--systems", "kuramoto", "--rows", "learned,static,corr_path"]
    args += ["--out", str(tmp_path)]
    summary = reproduce.main(args)
    first = capsys.readouterr().out
    assert "run 3 of 3: kuramoto5 seed 0 corr_path" in first
    table1 = summary["kuramoto5"]["table1"]
    assert set(table1) == {"learned", "corr_path"}
    assert 0.0 <= table1["learned"]["mean"] <= 100.0
    assert set(summary["kuramoto5"]["table2"]) == {"learned", "static"}
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(summary))
    text = (tmp_path / "results.md").read_text()
    assert "| Static |" in text and "not run" in text
    assert (tmp_path / "mse_kuramoto5.png").stat().st_size > 1000
    # A second invocation trains nothing: every run is reused.
    reproduce.main(args)
    second = capsys.readouterr().out
    assert second.count("done earlier, reused") == 3
    assert "epoch" not in second


def test_a_finished_run_of_other_settings_is_not_reused(tmp_path):
    run = _plan(systems=("springs",), rows=("static",))[0]
    run = reproduce.Run(run.system, 5, 0, "static", run.config, tmp_path / "static")
    run.workdir.mkdir()
    saved = json.loads(run.config.to_json())
    saved["train"]["epochs"] = 46
    (run.workdir / "config.json").write_text(json.dumps(saved))
    (run.workdir / "eval.json").write_text("{}")
    with pytest.raises(ValueError, match="config.train.epochs=46, not 1: use another --out"):
        reproduce.run_all([run], log=lambda line: None)


def test_results_cover_the_runs_of_earlier_invocations(tmp_path):
    for group, seed, row in (("charged5", 3, "static"), ("springs10", 0, "learned")):
        run_dir = tmp_path / "runs" / group / f"seed{seed}" / row
        run_dir.mkdir(parents=True)
        (run_dir / "eval.json").write_text(json.dumps({"mse_per_step": [1.0] * 20}))
    (tmp_path / "runs" / "charged5" / "seed3" / "unknown_row").mkdir()
    found = reproduce.finished_runs(tmp_path)
    assert sorted((r.system, r.objects, r.seed, r.row) for r in found) == [
        ("charged", 5, 3, "static"),
        ("springs", 10, 0, "learned"),
    ]
    assert set(reproduce.summarise(found)) == {"charged5", "springs10"}
