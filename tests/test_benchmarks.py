"""The benchmark suite's own tests: FLOP/byte counts, the JSON record of a tiny run,
`compare`, where runs are written (benchmarks/runs, or benchmarks/results with
--canonical) and the history lines. Fast: tiny synthetic cases, a few repetitions,
given machine limits."""
import copy
import json
import math
import pathlib

import pytest
import torch  # noqa: F401  (before cnnops, whose extension links against torch)

from benchmarks import compare, flops, history, report, runner, timing
from benchmarks.cases import DEFAULT_CASES, ConvCase

CASES = {c.name: c for c in DEFAULT_CASES}


def test_conv2d_flop_and_bytes_by_hand():
    p = CASES["conv3x3_c64_56"].problem()
    assert (p.P, p.Q) == (56, 56)
    fwd = 2 * 8 * 64 * 56 * 56 * 64 * 3 * 3
    assert fwd == 1_849_688_064
    assert flops.flop(p, "fwd") == fwd
    assert flops.flop(p, "fwd+bwd") == 3 * fwd
    assert flops.flop(p, "fwd+bwd", input_needs_grad=False) == 2 * fwd
    x, w, y = 8 * 64 * 56 * 56, 64 * 64 * 9, 8 * 64 * 56 * 56
    assert flops.bytes_moved(p, "fwd", 4) == (x + w + y) * 4 == 12_992_512
    assert flops.bytes_moved(p, "fwd+bwd", 8) == 3 * (x + w + y) * 8


def test_strided_stem_flop_by_hand():
    p = CASES["stem7x7s2_c3k64_224"].problem()
    assert (p.P, p.Q) == (112, 112)
    assert flops.flop(p, "fwd") == 2 * 8 * 64 * 112 * 112 * 3 * 7 * 7 == 1_888_223_232


def test_conv_transpose_is_the_dgrad_of_a_conv2d():
    p = CASES["convT3x3s2_c256k128_25"].problem()
    # the conv2d whose dgrad it is: 128 channels at 50 x 50 -> 256 channels at 25 x 25
    assert (p.N, p.C, p.H, p.W, p.K, p.P, p.Q) == (8, 128, 50, 50, 256, 25, 25)
    assert flops.flop(p, "fwd") == 2 * 8 * 256 * 25 * 25 * 128 * 9 == 2_949_120_000
    y = torch.nn.functional.conv_transpose2d(torch.zeros(1, 256, 25, 25), torch.zeros(256, 128, 3, 3),
                                             stride=2, padding=1, output_padding=1)
    assert tuple(y.shape[2:]) == (p.H, p.W)


def test_grouped_flop():
    p = flops.ConvProblem(N=2, C=8, H=5, W=5, K=4, R=3, S=3, P=5, Q=5, groups=2)
    assert flops.flop(p, "fwd") == 2 * 2 * 4 * 5 * 5 * 4 * 3 * 3
    assert p.weight_elems == 4 * 4 * 9


def test_avg_pool_flop_and_bytes_by_hand():
    p = CASES["avgpool3x3s1p1_c64_56"].problem()
    y = 8 * 64 * 56 * 56
    assert (p.P, p.Q) == (56, 56) and CASES["avgpool3x3s1p1_c64_56"].flop("fwd") == 9 * y
    assert CASES["avgpool3x3s1p1_c64_56"].bytes_moved("fwd+bwd", 4) == 2 * (y + y) * 4
    gap = CASES["gap_c2048_7"]
    assert (gap.problem().P, gap.problem().Q) == (1, 1) and gap.flop("fwd") == 32 * 2048 * 49
    assert gap.bytes_moved("fwd", 4) == (32 * 2048 * 49 + 32 * 2048) * 4
    assert {history.family_of(dict(op=c.op)) for c in DEFAULT_CASES if "pool" in c.op} == {
        "max_pool2d", "avg_pool2d"}


TINY = [ConvCase("tiny3x3", "conv2d", (2, 4, 8, 8), (6, 4, 3, 3), padding=1),
        ConvCase("tinyT", "conv_transpose2d", (2, 4, 5, 5), (4, 3, 3, 3), stride=2, padding=1,
                 output_padding=1)]
LIMITS = dict(peak_gflops=100.0, peak_method="given", mem_bw_gbs=10.0, mem_bw_method="given")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    settings = runner.Settings(budget=timing.Budget(seconds=0.01, min_reps=3, max_reps=5, warmup=1),
                               progress=False)
    result = runner.run_suite(TINY, settings, limits=LIMITS)
    paths = report.write_outputs(result, tmp_path_factory.mktemp("results"))
    return result, paths


def test_tiny_run_json_schema(tiny_run):
    _, paths = tiny_run
    assert paths["json"].name.startswith("cpu-") and paths["markdown"].exists()
    data = json.loads(paths["json"].read_text())
    assert data["schema"] == runner.SCHEMA
    assert {"date", "cpu_model", "torch_threads", "torch", "cnnops_build"} <= set(data["machine"])
    assert data["limits"]["peak_gflops"] == 100.0
    assert data["summary"]["rows"] == 2 * 2 * 2 and data["summary"]["failed"] == 0
    for row in data["rows"]:
        assert row["error"] is None and row["passed"] is True
        assert {"case", "layout", "mode", "dtype", "device", "flop", "bytes", "speedup",
                "time_ratio", "speedup_paired", "check"} <= set(row)
        for side in ("cnnops", "torch"):
            stats = row[side]
            assert 3 <= stats["reps"] == len(stats["times_ms"]) <= 5
            assert stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]
            assert stats["gflops"] == pytest.approx(row["flop"] / stats["median_ms"] / 1e6)
        assert row["speedup"] == pytest.approx(row["torch"]["median_ms"] / row["cnnops"]["median_ms"])
        names = {"output"} if row["mode"] == "fwd" else {"output", "grad_input", "grad_weight"}
        assert set(row["check"]["per_tensor"]) == names
        assert row["check"]["max_rel_err"] <= 1e-4


def test_tiny_run_table_and_markdown(tiny_run):
    result, paths = tiny_run
    text = report.table(result)
    assert "tiny3x3" in text and "channels_last" in text and "fwd+bwd" in text
    assert report.markdown(result).count("| tinyT |") == 4
    assert "png" not in paths or paths["png"].stat().st_size > 0


def _result(rows):
    return dict(schema=runner.SCHEMA, rows=rows)


def _row(case, cnnops_ms, torch_ms=10.0, iqr=0.02):
    side = lambda ms: dict(median_ms=ms, iqr_rel=iqr)  # noqa: E731
    return dict(case=case, layout="nchw", mode="fwd", dtype="float32", device="cpu",
                error=None, passed=True, cnnops=side(cnnops_ms), torch=side(torch_ms))


def _write(path, rows):
    path.write_text(json.dumps(_result(rows)))
    return str(path)


def test_compare_flags_a_regression(tmp_path, capsys):
    old = _write(tmp_path / "old.json", [_row("a", 10.0), _row("b", 10.0)])
    new = _write(tmp_path / "new.json", [_row("a", 13.0), _row("b", 10.5)])
    assert compare.main([old, new]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "+30.0%" in out
    entries = compare.compare_results(json.load(open(old)), json.load(open(new)))
    assert [e["status"] for e in entries] == ["REGRESSION", "same"]


def test_compare_within_noise_is_not_flagged(tmp_path):
    old = _write(tmp_path / "old.json", [_row("a", 10.0, iqr=0.2), _row("b", 10.0)])
    new = _write(tmp_path / "new.json", [_row("a", 13.0, iqr=0.2), _row("b", 8.0)])
    assert compare.main([old, new]) == 0  # a: +30% < 40% noise; b: faster
    entries = compare.compare_results(json.load(open(old)), json.load(open(new)))
    assert [e["status"] for e in entries] == ["same", "faster"]


def test_failed_checks_and_errors_are_rows_not_crashes(monkeypatch):
    monkeypatch.setitem(runner.check.TOLERANCE, torch.float32, -1.0)  # every check fails
    bad = ConvCase("bad", "conv2d", (1, 3, 4, 4), (2, 5, 3, 3))      # channel mismatch
    settings = runner.Settings(layouts=("nchw",), modes=("fwd",), progress=False,
                               budget=timing.Budget(seconds=0.0, min_reps=1, max_reps=1, warmup=0))
    result = runner.run_suite([TINY[0], bad], settings, limits=LIMITS)
    ok_row, bad_row = result["rows"]
    assert ok_row["error"] is None and ok_row["passed"] is False
    assert bad_row["error"] and bad_row["passed"] is False
    assert result["summary"] == dict(result["summary"], rows=2, failed=2, errors=1)
    assert "ERROR" in report.table(result) and "FAIL" in report.table(result)


def test_pass_cases_flop_bytes_and_modes():
    from benchmarks.pass_cases import passes_of
    dgrad, wgrad = passes_of(CASES["conv3x3_c64_56"])
    assert (dgrad.name, wgrad.name) == ("conv3x3_c64_56_dgrad", "conv3x3_c64_56_wgrad")
    assert dgrad.flop("fwd") == wgrad.flop("fwd") == 2 * 8 * 64 * 56 * 56 * 64 * 3 * 3
    assert dgrad.bytes_moved("fwd", 4) == (2 * 8 * 64 * 56 * 56 + 64 * 64 * 9) * 4
    assert dgrad.modes == ("fwd",)


def test_model_case_flop_by_hand():
    from benchmarks.model_cases import ModelCase
    case = ModelCase("simple", "simple_cnn", (2, 1, 28, 28), num_classes=10)
    convs = (2 * 28 * 28 * 64 * 1 * 49 + 2 * 14 * 14 * 128 * 64 * 9 + 2 * 14 * 14 * 128 * 128 * 9
             + 2 * 7 * 7 * 256 * 128 * 9 + 2 * 7 * 7 * 256 * 256 * 9)
    dense = 2 * (2304 * 128 + 128 * 64 + 64 * 10)
    assert case.flop("fwd") == 2 * (convs + dense)
    assert case.flop("fwd+bwd") == 3 * case.flop("fwd")


def test_passes_models_and_memory_bound_rows_run(tmp_path):
    from benchmarks.cases import MaxPoolCase
    from benchmarks.model_cases import ModelCase
    from benchmarks.pass_cases import passes_of
    cases = passes_of(TINY[0]) + [
        ModelCase("tiny_cnn", "simple_cnn", (2, 1, 28, 28), num_classes=10),
        ConvCase("tiny_dw", "conv2d", (2, 8, 9, 9), (8, 1, 3, 3), padding=1, groups=8),
        MaxPoolCase("tiny_pool", (2, 3, 9, 9))]
    settings = runner.Settings(budget=timing.Budget(seconds=0.01, min_reps=2, max_reps=3, warmup=1),
                               progress=False)
    result = runner.run_suite(cases, settings, limits=LIMITS)
    rows = {(r["case"], r["layout"], r["mode"]): r for r in result["rows"]}
    assert result["summary"]["failed"] == 0, [r.get("error") for r in result["rows"]]
    # the passes run once per layout (mode "fwd" only); the others in both modes
    assert len(rows) == 2 * 2 + 3 * 2 * 2
    assert rows[("tiny3x3_dgrad", "nchw", "fwd")]["check"]["per_tensor"].keys() == {"output"}
    model = rows[("tiny_cnn", "channels_last", "fwd+bwd")]
    assert model["check"]["reference"].startswith("torch float64")
    assert set(model["check"]["per_tensor"]) == {"output", "grad_input"}
    for name in ("tiny_dw", "tiny_pool"):
        row = rows[(name, "nchw", "fwd")]
        assert row["memory_bound"]
        assert row["cnnops"]["peak_fraction"] == pytest.approx(row["cnnops"]["gbs"] / 10.0)
    assert not rows[("tiny_cnn", "nchw", "fwd")]["memory_bound"]
    assert "GB/s" in report.table(result) and "GFLOP/s" in report.table(result)


def test_fixed_cost_rows_one_per_op_on_both_devices(tmp_path):
    """Issue 21: a tiny-input row per op (the per-call overhead, cnnops against torch),
    in the CPU and the CUDA suites, run in both modes like the other rows."""
    from benchmarks.cases import CUDA_CASES, FIXED_COST_CASES
    names = ["fixedcost_conv2d", "fixedcost_conv_transpose2d", "fixedcost_max_pool2d",
             "fixedcost_depthwise"]
    assert [c.name for c in FIXED_COST_CASES] == names
    for cases in (DEFAULT_CASES, CUDA_CASES):
        assert [c.name for c in cases if c.name.startswith("fixedcost_")] == names
    for case in FIXED_COST_CASES:
        assert case.input_shape == (1, 8, 8, 8)
    assert CASES["fixedcost_depthwise"].memory_bound
    settings = runner.Settings(budget=timing.Budget(seconds=0.01, min_reps=2, max_reps=3, warmup=1),
                               layouts=("nchw",), progress=False)
    result = runner.run_suite(FIXED_COST_CASES, settings, limits=LIMITS)
    assert result["summary"]["failed"] == 0, [r.get("error") for r in result["rows"]]
    rows = {(r["case"], r["mode"]) for r in result["rows"]}
    assert rows == {(n, m) for n in names for m in ("fwd", "fwd+bwd")}


def test_deep_check_tolerates_rare_mask_flips_not_wrong_gradients():
    from benchmarks import check
    ref = (torch.ones(100, dtype=torch.float64), torch.ones(100, dtype=torch.float64))
    theirs = (ref[0].float(), ref[1].float())
    flipped = (ref[0].float(), ref[1].float().clone())
    flipped[1][3] += 3e-3                       # one ReLU flip's worth: passes
    assert check.deep_check(flipped, theirs, ref, ("output", "grad_input"))["passed"]
    wrong = (ref[0].float(), -ref[1].float())   # a wrong gradient: fails
    assert not check.deep_check(wrong, theirs, ref, ("output", "grad_input"))["passed"]
    off = (ref[0].float() * (1 + 1e-4), ref[1].float())  # an output off by 1e-4: fails
    assert not check.deep_check(off, theirs, ref, ("output", "grad_input"))["passed"]


def test_allocator_modes():
    import subprocess
    import sys

    from benchmarks import allocator
    assert allocator.apply("system").startswith("system")
    # steady() cannot be undone: run it in a child, not in the test process
    steady = subprocess.run([sys.executable, "-c", "from benchmarks import allocator; "
                             "print(allocator.apply('steady'))"], capture_output=True, text=True,
                            check=True, cwd=str(pathlib.Path(__file__).resolve().parents[1])).stdout
    assert steady.startswith("steady") or steady.startswith("system (not glibc")
    from benchmarks.__main__ import parse_args, settings_from
    args = parse_args(["--malloc", "system", "--device", "cpu"])
    assert settings_from(args).malloc.startswith("system")


def test_every_timed_call_follows_a_call_of_its_own_side():
    # Blocks of one call (block_ms below the call time): a, A, b, B, then B-side
    # first on odd repetitions: each timed call finds the caches as its own
    # previous call left them.
    calls = []

    def timer(fn):
        calls.append("timed")
        fn()
        return 1.0

    budget = timing.Budget(seconds=0.0, min_reps=4, max_reps=4, warmup=1, block_ms=0.5)
    times_a, times_b = timing.interleaved(lambda: calls.append("a"), lambda: calls.append("b"),
                                          timer, budget)
    assert len(times_a) == len(times_b) == 4
    timed = [i for i, c in enumerate(calls) if c == "timed"][2:]  # after the warm-up's pair
    assert len(timed) == 8
    for i in timed:
        assert calls[i - 1] == calls[i + 1]  # the call before the timed one is the same side's
    sides = [calls[i + 1] for i in timed]
    assert sides == ["a", "b", "b", "a", "a", "b", "b", "a"]


@pytest.mark.parametrize("call_ms, n", [(5.0, 6), (1.0, 8), (40.0, 1)])
def test_sides_take_turns_in_blocks_of_untimed_then_timed_calls(call_ms, n):
    # Each side's block: n untimed calls, then n timed ones; n fills block_ms
    # (30) with calls of the warm-up's time, at most max_block (8), at least 1.
    # Pairs of blocks alternate which side goes first; max_reps caps the
    # timed calls of the last block.
    calls = []

    def timer(fn):
        calls.append("T")
        fn()
        return call_ms

    budget = timing.Budget(seconds=0.0, min_reps=2 * n + 1, max_reps=2 * n + 1, warmup=1)
    times_a, times_b = timing.interleaved(lambda: calls.append("a"), lambda: calls.append("b"),
                                          timer, budget)
    assert times_a == times_b == [call_ms] * (2 * n + 1)
    seq, i = [], 0
    while i < len(calls):  # (side, timed?) per call
        timed = calls[i] == "T"
        seq.append((calls[i + 1], timed) if timed else (calls[i], False))
        i += 2 if timed else 1
    assert seq[:2] == [("a", True), ("b", True)]  # the warm-up, timed to size the blocks
    blocks = []  # runs of equal (side, timed)
    for entry in seq[2:]:
        if blocks and blocks[-1][0] == entry:
            blocks[-1][1] += 1
        else:
            blocks.append([entry, 1])
    expect = [[("a", False), n], [("a", True), n], [("b", False), n], [("b", True), n],
              [("b", False), n], [("b", True), n], [("a", False), n], [("a", True), n],
              [("a", False), n], [("a", True), 1], [("b", False), n], [("b", True), 1]]
    if n == 1:  # runs of one side merge: compare the per-call order instead
        expect_seq = [(s, t) for (s, t), k in expect for _ in range(k)]
        assert seq[2:] == expect_seq
    else:
        assert blocks == expect


def test_each_side_runs_on_its_own_inputs_and_keeps_its_outputs():
    import weakref

    import torch.nn.functional as F

    import cnnops

    workload = runner.Workload.create(TINY[0], "nchw", "fwd+bwd", "cpu", torch.float64)
    ours, theirs = workload.inputs_of(cnnops), workload.inputs_of(F)
    for a, b, original in zip(ours, theirs, workload.inputs):
        assert a is not b and a.data_ptr() != b.data_ptr()
        assert torch.equal(a, original) and a.stride() == original.stride()
        assert a.requires_grad == original.requires_grad
    step_ours, step_theirs = workload.step(cnnops), workload.step(F)
    first = [weakref.ref(t) for t in step_ours()]
    step_theirs()
    assert all(r() is not None for r in first)   # kept while the other side runs
    assert ours[0].grad is first[1]() and theirs[0].grad is not ours[0].grad
    step_ours()
    assert all(r() is None for r in first)       # released by its own next step


def _speedup_row(op, speedup, params=None, error=None):
    return dict(case=op, op=op, layout="nchw", mode="fwd", params=params or {}, error=error,
                speedup=None if error else speedup)


def test_history_line_is_the_geomean_speedup_per_family():
    dw = dict(groups=8, weight_shape=[8, 1, 3, 3])
    rows = [_speedup_row("conv2d", 0.5), _speedup_row("conv2d_dgrad", 2.0),
            _speedup_row("conv2d_wgrad", 1.0, error="RuntimeError: boom"),  # left out
            _speedup_row("conv2d", 4.0, params=dw), _speedup_row("conv2d", 1.0, params=dw),
            _speedup_row("conv_transpose2d", 0.8), _speedup_row("max_pool2d", 3.0),
            _speedup_row("max_pool2d", 12.0), _speedup_row("model", 0.7),
            _speedup_row("avg_pool2d", 2.0), _speedup_row("adaptive_avg_pool2d", 8.0),
            dict(_speedup_row("max_pool2d", 0.25), case="fixedcost_max_pool2d"),
            dict(_speedup_row("conv2d", 0.5), case="fixedcost_conv2d")]
    result = dict(schema=runner.SCHEMA, rows=rows, limits=dict(peak_gflops=123.456),
                  summary=dict(rows=len(rows), failed=1, errors=1, runtime_s=1.0),
                  settings=dict(dtype="float32", layouts=["nchw"], threads=2,
                                budget=dict(seconds=5.0), malloc="steady (glibc ...)"),
                  machine=dict(date="2026-01-02T03:04:05", device="cpu", cpu_model="Some CPU",
                               cpu_count=4, torch="2.13.0", commit="abc1234"))
    line = history.history_line(result, run="cpu-2026-01-02T0304")
    assert line["geomean_speedup"] == dict(conv2d=1.0, conv_transpose2d=0.8, max_pool2d=6.0,
                                           avg_pool2d=4.0, depthwise=2.0, separable=None, models=0.7,
                                           fixed_cost=0.354)  # sqrt(0.25 * 0.5), rounded
    assert (line["date"], line["run"], line["commit"]) == (
        "2026-01-02T03:04:05", "cpu-2026-01-02T0304", "abc1234")
    assert (line["machine"], line["cpu"], line["malloc"]) == ("Some CPU", "Some CPU, 2 of 4 threads",
                                                              "steady")
    assert (line["peak_gflops"], line["rows"], line["failed"]) == (123.5, 13, 1)
    assert history.history_line(result, commit="def5678")["commit"] == "def5678"
    assert json.loads(json.dumps(line)) == line
    assert history.geomean([2.0, 8.0]) == pytest.approx(4.0) and history.geomean([]) is None
    assert math.isclose(history.geomean([0.5]), 0.5)


def test_history_lines_of_the_tiny_run(tiny_run):
    result, _ = tiny_run
    line = history.history_line(result)
    assert set(line["geomean_speedup"]) == set(history.FAMILIES)
    assert line["geomean_speedup"]["conv2d"] > 0 and line["geomean_speedup"]["conv_transpose2d"] > 0
    assert line["geomean_speedup"]["models"] is None and line["device"] == "cpu"


def test_runs_go_to_the_ignored_runs_folder_by_default():
    from benchmarks.__main__ import parse_args
    args = parse_args([])
    assert args.out == report.RUNS_DIR and report.RUNS_DIR.name == "runs" and not args.canonical
    assert report.RUNS_DIR.parent == report.RESULTS_DIR.parent
    repo = pathlib.Path(__file__).resolve().parents[1]
    assert "/benchmarks/runs/" in (repo / ".gitignore").read_text().split()
    with pytest.raises(SystemExit):  # one or the other
        parse_args(["--canonical", "--out", "somewhere"])


def _dated(result, date):
    result = copy.deepcopy(result)
    result["machine"]["date"] = date
    return result


def _fill(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("old\n")


def test_canonical_run_replaces_the_previous_run_of_its_device(tiny_run, tmp_path):
    result, _ = tiny_run
    results = tmp_path / "results"
    old_cpu = ["cpu-2026-01-01T0000.json", "cpu-2026-01-01T0000.md", "cpu-2026-01-01T0000.png",
               "cpu-2026-01-01T0000-2.json"]
    others = ["cuda-2026-01-01T0000.json", "cuda-2026-01-01T0000.md", "cuda-2026-01-01T0000.png",
              "cuda-2026-01-01T0000-tests.log", "cuda-2026-01-01-sanitizer-summary.md",
              "README.md"]
    _fill(results, old_cpu + others)
    (results / "history.jsonl").write_text(json.dumps(dict(run="cpu-2026-01-01T0000")) + "\n")

    paths = report.write_canonical(_dated(result, "2026-02-03T04:05:06"), results)
    assert sorted(p.name for p in paths["removed"]) == sorted(old_cpu)
    kept = sorted(p.name for p in results.iterdir())
    new = ["cpu-2026-02-03T0405.json", "cpu-2026-02-03T0405.md"]
    assert set(new) <= set(kept) and not set(old_cpu) & set(kept)
    assert set(others) <= set(kept)
    assert set(kept) <= set(others + new + ["cpu-2026-02-03T0405.png", "history.jsonl"])
    lines = history.read(results / "history.jsonl")
    assert len(lines) == 2 and lines[-1] == history.history_line(
        _dated(result, "2026-02-03T04:05:06"), run="cpu-2026-02-03T0405")

    report.write_canonical(_dated(result, "2026-02-04T00:00:00"), results)  # and again
    assert [p.name for p in report.run_files(results, "cpu")][:2] == [
        "cpu-2026-02-04T0000.json", "cpu-2026-02-04T0000.md"]
    assert len(report.run_files(results, "cuda")) == 3
    assert len(history.read(results / "history.jsonl")) == 3


def test_canonical_flag_writes_to_results_and_appends_one_line(tiny_run, tmp_path, monkeypatch,
                                                               capsys):
    import benchmarks.__main__ as cli
    result, _ = tiny_run
    results, runs = tmp_path / "results", tmp_path / "runs"
    _fill(results, ["cpu-2026-01-01T0000.json", "cpu-2026-01-01T0000.md"])
    monkeypatch.setattr(report, "RESULTS_DIR", results)
    monkeypatch.setattr(cli.runner, "run_suite", lambda cases, settings: result)  # no timing
    argv = ["--device", "cpu", "--malloc", "system", "--no-progress"]
    assert cli.main(argv + ["--canonical"]) == 0
    assert [p.name for p in report.run_files(results, "cpu")][0] != "cpu-2026-01-01T0000.json"
    assert len(report.run_files(results, "cpu")) in (2, 3)  # json, md (and png)
    assert len(history.read(results / "history.jsonl")) == 1
    assert "one line appended" in capsys.readouterr().out

    assert cli.main(argv + ["--out", str(runs)]) == 0  # an ordinary run leaves results alone
    assert len(report.run_files(runs, "cpu")) in (2, 3)
    assert len(history.read(results / "history.jsonl")) == 1
    with pytest.raises(SystemExit, match="--filter"):
        cli.main(argv + ["--canonical", "--filter", "conv"])
