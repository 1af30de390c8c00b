"""`fmer verify` and load_run: a damaged or unfinished run is named, an intact one loads."""

import json
import shutil

import pytest
from conftest import run_fmer, smoke_args

from fmer.cli import main
from fmer.runlog import EVAL_COLUMNS, RunLogError, load_run, verify_run
from fmer.sac import SAC


def _copy(run, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(run, dst)
    return dst


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-7])


def _edit(path):
    text = path.read_text()
    last_comma = text.rindex(",", 0, len(text) - 2)
    path.write_text(text[:last_comma] + ",12345.0\n")


def _swap_rows(path):
    lines = path.read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]
    path.write_text("".join(lines))


def _mark_running(run):
    meta = json.loads((run / "meta.json").read_text())
    meta["status"] = "running"
    (run / "meta.json").write_text(json.dumps(meta))


def test_intact_run_verifies_and_loads(smoke_run, capsys):
    assert verify_run(smoke_run) == []
    assert main(["verify", str(smoke_run)]) == 0
    assert f"ok  {smoke_run}" in capsys.readouterr().out
    meta, eval_df, train_df = load_run(smoke_run)
    assert meta["status"] == "complete"
    assert tuple(eval_df.columns) == EVAL_COLUMNS
    assert list(eval_df["step"]) == [150, 300]
    assert set(SAC.metric_names) <= set(train_df.columns)


@pytest.mark.parametrize(
    ("damage", "file", "words"),
    [
        (_truncate, "eval.csv", "sha256"),
        (_edit, "train.csv", "sha256"),
        (_swap_rows, "train.csv", "strictly increasing"),
    ],
)
def test_damaged_log_is_named(smoke_run, tmp_path, damage, file, words):
    run = _copy(smoke_run, tmp_path)
    damage(run / file)
    problems = verify_run(run)
    assert any(str(run / file) in p and words in p for p in problems), problems
    with pytest.raises(RunLogError, match=words):
        load_run(run)


def test_unfinished_run_is_named(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    _mark_running(run)
    assert any("not marked complete" in p for p in verify_run(run))


def test_verify_cli_names_each_bad_run_and_fails(smoke_run, tmp_path):
    truncated, unfinished = _copy(smoke_run, tmp_path, "a"), _copy(smoke_run, tmp_path, "b")
    _truncate(truncated / "train.csv")
    _mark_running(unfinished)
    (tmp_path / "empty").mkdir()
    proc = run_fmer("verify", smoke_run, truncated, unfinished, tmp_path / "empty")
    assert proc.returncode == 1
    assert f"ok  {smoke_run}" in proc.stdout
    assert str(truncated / "train.csv") in proc.stderr
    assert f"{unfinished}: run is not marked complete" in proc.stderr
    assert str(tmp_path / "empty" / "meta.json") in proc.stderr
    assert "3 of 4 run(s) failed" in proc.stderr


def test_rerun_of_a_run_is_identical_and_an_edited_copy_differs(smoke_run, tmp_path, capsys):
    assert main(["verify", "--rerun", str(smoke_run)]) == 0
    assert f"identical: {smoke_run}" in capsys.readouterr().out
    edited = _copy(smoke_run, tmp_path)
    path = edited / "eval.csv"
    lines = path.read_text().splitlines(keepends=True)
    assert lines[1].startswith("150,")
    fields = lines[1].split(",")
    fields[EVAL_COLUMNS.index("return_mean")] = "12345.0"
    lines[1] = ",".join(fields)
    path.write_text("".join(lines))
    # 200: the shortened run evaluates at its last step, which the original does not
    assert main(["verify", "--rerun", str(edited), "--steps", "200"]) == 1
    err = capsys.readouterr().err
    assert "differs:" in err and "eval.csv: step 150, column return_mean" in err
    assert "'12345.0'" in err


def test_rerun_of_a_qvpo_run_is_identical_in_full_and_up_to_a_step(tmp_path, capsys):
    # QVPO's entropy weight decays over train.total_steps: a rerun cut at --steps 250 keeps the
    # original's horizon, so its first 250 steps are the original's
    run = tmp_path / "qvpo"
    assert main([*smoke_args(run, algo="qvpo"), "--set", "qvpo.train_samples=8",
                 "--set", "qvpo.diffusion_steps=5"]) == 0
    assert main(["verify", "--rerun", str(run)]) == 0
    assert main(["verify", "--rerun", str(run), "--steps", "250"]) == 0
    assert capsys.readouterr().out.count(f"identical: {run}") == 2


def test_compare_logs_names_a_missing_row_and_ignores_timing(smoke_run, tmp_path):
    from fmer.rerun import compare_logs

    other = _copy(smoke_run, tmp_path)
    path = other / "train.csv"
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    fields = lines[-1].rstrip("\n").split(",")
    fields[header.index("updates_per_s")] = "1.0"  # timing: not compared
    path.write_text("".join(lines[:-2]) + ",".join(fields) + "\n")  # and a row dropped
    step = lines[-2].split(",")[0]
    assert compare_logs(smoke_run, other) == (f"train.csv: step {step}: "
                                              "a row in the shipped log only")
    assert compare_logs(smoke_run, smoke_run) is None


def test_a_run_made_on_a_cpu_with_other_float_kernels_is_not_retrained(smoke_run, tmp_path,
                                                                        capsys):
    other = _copy(smoke_run, tmp_path)
    meta = json.loads((other / "meta.json").read_text())
    assert meta["device"]["float_fingerprint"]  # recorded by the run
    meta["device"]["float_fingerprint"] = "0123456789abcdef"
    (other / "meta.json").write_text(json.dumps(meta))
    assert main(["verify", "--rerun", str(other)]) == 3
    err = capsys.readouterr().err
    assert f"not compared: {other}: made on a CPU whose float kernels round differently" in err
    assert "0123456789abcdef" in err
