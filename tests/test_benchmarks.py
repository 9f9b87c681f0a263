"""The benchmark suite's own tests: FLOP/byte counts, the JSON record of a tiny run,
`compare`, where runs are written (benchmarks/runs, or benchmarks/results with
--canonical), the history lines, the layer rows and the sweep. Fast: tiny synthetic cases
and models, a few repetitions, given machine limits. The inference rows' tests are in
test_benchmarks_inference.py."""
import copy
import json
import math
import pathlib

import pytest
import torch  # noqa: F401  (before cnnops, whose extension links against torch)

import cnnops
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
            dict(_speedup_row("conv2d", 0.5), case="fixedcost_conv2d"),
            dict(_speedup_row("conv2d", 0.1), case="layer_resnet50_b1_c64k64_3x3s1_32"),
            dict(_speedup_row("inference", 1.5), case="infer_resnet50_b1_224")]
    result = dict(schema=runner.SCHEMA, rows=rows, limits=dict(peak_gflops=123.456),
                  summary=dict(rows=len(rows), failed=1, errors=1, runtime_s=1.0),
                  settings=dict(dtype="float32", layouts=["nchw"], threads=2,
                                budget=dict(seconds=5.0), malloc="steady (glibc ...)"),
                  machine=dict(date="2026-01-02T03:04:05", device="cpu", cpu_model="Some CPU",
                               cpu_count=4, torch="2.13.0", commit="abc1234"))
    line = history.history_line(result, run="cpu-2026-01-02T0304")
    # dense_conv: conv2d 0.5, its dgrad 2.0 and conv_transpose2d 0.8 (not the depthwise,
    # model, fixed-cost, layer or inference rows): 0.8 ** (1 / 3)
    assert line["geomean_speedup"] == dict(dense_conv=0.928, conv2d=1.0, conv_transpose2d=0.8,
                                           max_pool2d=6.0, avg_pool2d=4.0, depthwise=2.0,
                                           separable=None, models=0.7,
                                           fixed_cost=0.354,  # sqrt(0.25 * 0.5)
                                           layers=0.1, inference=1.5)
    assert (line["date"], line["run"], line["commit"]) == (
        "2026-01-02T03:04:05", "cpu-2026-01-02T0304", "abc1234")
    assert (line["machine"], line["cpu"], line["malloc"]) == ("Some CPU", "Some CPU, 2 of 4 threads",
                                                              "steady")
    assert (line["peak_gflops"], line["rows"], line["failed"]) == (123.5, 15, 1)
    assert history.history_line(result, commit="def5678")["commit"] == "def5678"
    assert json.loads(json.dumps(line)) == line
    assert history.geomean([2.0, 8.0]) == pytest.approx(4.0) and history.geomean([]) is None
    assert math.isclose(history.geomean([0.5]), 0.5)


def test_history_lines_of_the_tiny_run(tiny_run):
    result, _ = tiny_run
    line = history.history_line(result)
    assert set(line["geomean_speedup"]) == {"dense_conv", *history.FAMILIES}
    assert line["geomean_speedup"]["conv2d"] > 0 and line["geomean_speedup"]["conv_transpose2d"] > 0
    assert result["summary"]["geomean_speedup"] == line["geomean_speedup"]
    assert line["geomean_speedup"]["dense_conv"] == pytest.approx(
        math.sqrt(line["geomean_speedup"]["conv2d"] * line["geomean_speedup"]["conv_transpose2d"]),
        abs=1.5e-3)
    assert "geomean speedup (rows): dense_conv" in report.table(result)
    assert "- geomean speedup (rows): dense_conv" in report.markdown(result)
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
    with pytest.raises(SystemExit, match="--inference-size"):
        cli.main(argv + ["--canonical", "--inference-size", "64"])


# --- per-layer rows, dense_conv geomean, batch sweep (issue "CPU convolution engine", item 5)

def test_layer_shapes_found_in_the_models():
    from benchmarks.layer_cases import dense_convs
    r50 = dict(dense_convs("resnet50", 128, 128))
    assert len(r50) == 23 and sum(r50.values()) == 53  # 1 stem + 16 bottlenecks x 3 + 4 shortcuts
    # the stem, then per stage (4 of them, widths 64..512) its 3x3 convs: strided in the
    # first block of stages 2-4, plain in the others
    assert r50[((3, 128, 128), (64, 3, 7, 7), 2, 3, 1)] == 1
    threes = {(w[0], chw[1], stride): n for (chw, w, stride, _, _), n in r50.items() if w[2] == 3}
    assert threes == {(64, 32, 1): 3, (128, 32, 2): 1, (128, 16, 1): 3, (256, 16, 2): 1,
                      (256, 8, 1): 5, (512, 8, 2): 1, (512, 4, 1): 2}
    assert r50[((256, 8, 8), (1024, 256, 1, 1), 1, 0, 1)] == 6  # stage 3's expand
    xc = dict(dense_convs("xception", 160, 160))
    assert len(xc) == 16 and sum(xc.values()) == 40  # 2 stem + 4 shortcuts + 34 pointwise
    assert xc[((728, 10, 10), (728, 728, 1, 1), 1, 0, 1)] == 25  # 8 middle blocks x 3, exit's first
    assert xc[((3, 160, 160), (32, 3, 3, 3), 2, 0, 1)] == 1
    # dense only: every filter spans all input channels (no depthwise)
    assert all(w[1] == chw[0] for chw, w, *_ in list(r50) + list(xc))


def test_layer_rows_names_modes_and_family():
    from benchmarks.cases import CUDA_CASES, cases_for
    from benchmarks.layer_cases import LayerCase, layer_name
    assert layer_name("resnet50", 1, (512, 4, 4), (512, 512, 3, 3), 1, 1) == \
        "layer_resnet50_b1_c512k512_3x3s1_4"
    assert layer_name("xception", 16, (32, 79, 79), (64, 32, 3, 3), 1, 0) == \
        "layer_xception_b16_c32k64_3x3s1p0_79"
    assert layer_name("m", 2, (8, 6, 9), (4, 8, 1, 1), 2, 0, 2) == "layer_m_b2_c8k4_1x1s2d2_6x9"
    cpu = cases_for("cpu", inference=False)
    layers = [c for c in cpu if isinstance(c, LayerCase)]
    assert cpu[:len(DEFAULT_CASES)] == DEFAULT_CASES and cpu[len(DEFAULT_CASES):] == layers
    assert len(layers) == 2 * (23 + 16) and len({c.name for c in layers}) == len(layers)
    assert all(c.name.startswith(f"layer_{c.model}_b{c.input_shape[0]}_") for c in layers)
    rows = [(c, m) for c in layers for m in c.modes]  # x 2 layouts in a run
    assert len(rows) == 39 * 3 and {c.modes for c in layers} == {("fwd",), ("fwd", "fwd+bwd")}
    assert all(("fwd+bwd" in c.modes) == (c.input_shape[0] == 16) for c in layers)
    assert {c.resolution for c in layers if c.model == "resnet50"} == {(128, 128)}  # its model row's
    assert {c.resolution for c in layers if c.model == "xception"} == {(160, 160)}
    assert cases_for("cpu", layers=False, inference=False) == DEFAULT_CASES
    assert cases_for("cuda") == CUDA_CASES
    row = dict(case=layers[0].name, op="conv2d", params=layers[0].describe())
    assert history.family_of(row) == "layers" and not layers[0].memory_bound
    budget = runner.row_budget(layers[0], runner.DEFAULT_BUDGET)
    assert budget.seconds == pytest.approx(0.3) and budget.min_reps == 3
    assert runner.row_budget(TINY[0], runner.DEFAULT_BUDGET) == runner.DEFAULT_BUDGET


def _timed_row(case, layout, mode, c_ms, t_ms, **params):
    side = lambda ms: dict(median_ms=ms, iqr_rel=0.0, peak_fraction=0.5)  # noqa: E731
    return dict(case=case, op=params.pop("op", "conv2d"), layout=layout, mode=mode, error=None,
                passed=True, params=params, cnnops=side(c_ms), torch=side(t_ms), speedup=t_ms / c_ms)


def test_layer_report_totals_per_model():
    from benchmarks import layer_report
    lay = dict(model="resnet50", input_shape=[1, 64, 32, 32], resolution=[128, 128])
    rows = [_timed_row("layer_resnet50_b1_c64k64_3x3s1_32", "nchw", "fwd", 2.0, 1.0, count=3, **lay),
            _timed_row("layer_resnet50_b1_c64k256_1x1s1_32", "nchw", "fwd", 1.0, 2.0, count=4, **lay),
            _timed_row("layer_resnet50_b1_c64k256_1x1s1_32", "nchw", "fwd+bwd", 3.0, 3.0, count=4, **lay),
            _timed_row("resnet50_b1_128", "nchw", "fwd", 20.0, 10.0, op="model", builder="resnet50",
                       input_shape=[1, 3, 128, 128]),
            _timed_row("conv3x3", "nchw", "fwd", 1.0, 1.0)]
    groups = layer_report.layer_groups(rows)
    assert list(groups) == [("resnet50", 1, "nchw", "fwd"), ("resnet50", 1, "nchw", "fwd+bwd")]
    t = layer_report.totals(groups[("resnet50", 1, "nchw", "fwd")])
    assert (t["cnnops_ms"], t["torch_ms"], t["layers"], t["convs"]) == (10.0, 11.0, 2, 7)  # 3x2+4x1
    assert t["speedup"] == pytest.approx(1.1)
    result = dict(rows=rows)
    md = "\n".join(layer_report.markdown_lines(result))
    assert "### resnet50, batch 1, nchw, fwd (128x128 input)" in md
    assert "cnnops 10.00 ms, torch 11.00 ms (1.10x); 2 distinct layers, 7 convolutions" in md
    assert "The whole model (resnet50_b1_128): cnnops 20.00 ms, torch 10.00 ms." in md
    assert "| c64k64_3x3s1_32 | 3 | 2.000 | 1.000 | 0.50x | 50.0% | 50.0% | 6.00 | 60% | +3.00 |" in md
    assert "| resnet50 | 1 | nchw | fwd | 2 (7) | 10.00 | 11.00 | 1.10x | c64k64_3x3s1_32 |" in md
    assert layer_report.markdown_lines(dict(rows=rows[3:])) == []
    assert any("resnet50  1" in line for line in layer_report.text_lines(result))


def test_compare_shows_geomeans_over_common_rows(tmp_path, capsys):
    def rows(conv_ms, layer_ms):
        return [dict(_row("conv_a", conv_ms), op="conv2d", params={}, speedup=10.0 / conv_ms),
                dict(_row("convT_a", 10.0), op="conv_transpose2d", params={}, speedup=1.0),
                dict(_row("layer_m_b1_x", layer_ms), op="conv2d", params={}, speedup=10.0 / layer_ms)]
    old, new = rows(10.0, 10.0), rows(5.0, 10.0)
    new.append(dict(_row("conv_b", 1.0), op="conv2d", params={}, speedup=10.0))  # only in new
    entries = compare.geomean_entries(_result(old), _result(new))
    assert [(n, round(a, 3), round(b, 3), k) for n, a, b, k in entries] == [
        ("dense_conv", 1.0, 1.414, 2), ("conv2d", 1.0, 2.0, 1), ("conv_transpose2d", 1.0, 1.0, 1),
        ("layers", 1.0, 1.0, 1)]
    compare.main([_write(tmp_path / "old.json", old), _write(tmp_path / "new.json", new)])
    assert "dense_conv       1.000 -> 1.414 (+41.4%, 2 rows)" in capsys.readouterr().out


@pytest.fixture()
def tiny_sweep(monkeypatch, tmp_path):
    from benchmarks import sweep
    monkeypatch.setattr(sweep, "LAYERS", (ConvCase("sweep_tiny3x3", "conv2d", (1, 4, 6, 6), (4, 4, 3, 3),
                                                   padding=1),))
    monkeypatch.setattr(sweep, "BATCHES", (1, 2, 4))
    settings = runner.Settings(budget=timing.Budget(seconds=0.01, min_reps=2, max_reps=3, warmup=1),
                               modes=("fwd+bwd",), progress=False, sweep=True)
    result = runner.run_suite([TINY[1]], settings, limits=LIMITS)
    return result, report.write_outputs(result, tmp_path)


def test_sweep_record_and_outputs(tiny_sweep):
    from benchmarks import sweep
    result, paths = tiny_sweep
    assert [r["case"] for r in result["rows"]] == ["tinyT", "tinyT"]  # the points are not rows
    record = json.loads(paths["json"].read_text())["sweep"]
    assert record["batches"] == [1, 2, 4] and record["layouts"] == ["nchw", "channels_last"]
    assert record["peak_gflops"] == 100.0 and record["failed"] == 0
    assert 0 < record["runtime_s"] and all(r["wall_s"] > 0 for r in result["rows"])
    assert " s (batch sweep " in report.footer_line(result)
    assert [layer["name"] for layer in record["layers"]] == ["sweep_tiny3x3"]
    points = record["points"]
    assert len(points) == 3 * 2 and {p["mode"] for p in points} == {"fwd"}
    for p in points:
        assert p["case"] == f"sweep_tiny3x3_b{p['batch']}" and p["passed"]
        assert p["flop"] == 2 * p["batch"] * 4 * 36 * 4 * 9
        assert p["cnnops"]["peak_fraction"] == pytest.approx(p["cnnops"]["gflops"] / 100.0)
        assert p["cnnops"]["reps"] == len(p["cnnops"]["times_ms"]) >= 2
    assert "## Batch sweep" in paths["markdown"].read_text()
    assert "sweep_tiny3x3  channels_last  torch" in report.table(result)
    assert "sweep png" not in paths or (paths["sweep png"].name.endswith("-sweep.png")
                                        and paths["sweep png"].stat().st_size > 0)
    assert sweep.save_sweep_chart(dict(result, sweep=None), paths["json"].with_suffix(".x")) is None
    assert report._RUN_FILE.match("cpu-2026-01-01T0000-2-sweep.png")  # canonical runs replace it
    assert not report._RUN_FILE.match("cpu-2026-01-01T0000-sweep.json")


def test_cli_sweep_layers_and_filter_switches(monkeypatch, tmp_path):
    import benchmarks.__main__ as cli
    seen = []

    def fake_run_suite(cases, settings):
        seen.append(([c.name for c in cases], settings.sweep, settings.inference_compile))
        return dict(rows=[], summary=dict(failed=0, sweep_failed=0))
    monkeypatch.setattr(cli.runner, "run_suite", fake_run_suite)
    monkeypatch.setattr(cli.report, "table", lambda result: "")
    monkeypatch.setattr(cli.report, "write_outputs", lambda result, out: {})
    argv = ["--device", "cpu", "--malloc", "system", "--no-progress"]
    for extra in (["sweep"], [], ["--no-layers", "--no-sweep", "--no-inference"],
                  ["--filter", "layer_xception_b1_"], ["--filter", "conv3x3_c64", "--sweep"],
                  ["--filter", "infer_", "--no-compile", "--inference-size", "64",
                   "--inference-max-batch", "2"]):
        assert cli.main(extra[:1] + argv + extra[1:] if extra[:1] == ["sweep"] else argv + extra) == 0
    (sweep_only, s1, _), (full, s2, c2), (plain, s3, _), (layers, s4, _), (filtered, s5, _), \
        (infer, s6, c6) = seen
    assert sweep_only == [] and s1
    assert len(full) == len(DEFAULT_CASES) + 78 + 5 and s2 and c2
    assert full[-5:] == ["infer_resnet50_b1_224", "infer_resnet50_b16_224",
                         "infer_mobilenet_v2_b1_224", "infer_efficientnet_b0_b1_224",
                         "infer_xception_b1_299"]
    assert plain == [c.name for c in DEFAULT_CASES] and not s3
    assert len(layers) == 16 and not s4
    assert filtered == ["conv3x3_c64_56", "conv3x3_c64_56_dgrad", "conv3x3_c64_56_wgrad"] and s5
    assert infer == ["infer_resnet50_b1_64", "infer_resnet50_b2_64", "infer_mobilenet_v2_b1_64",
                     "infer_efficientnet_b0_b1_64", "infer_xception_b1_64"] and not s6 and not c6
    with pytest.raises(SystemExit, match="--canonical"):
        cli.main(["sweep"] + argv + ["--canonical"])
