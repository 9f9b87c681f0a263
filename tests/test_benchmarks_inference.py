"""The benchmark suite's inference rows (benchmarks/inference_cases.py,
inference_report.py): whole classifiers timed as torch eager, torch.compile with freezing
and cnnops.optimize_for_inference, on tiny sizes; the check, the speedups, the family and
the report. The other families' benchmark tests are in test_benchmarks.py."""
import json

import pytest
import torch  # noqa: F401  (before cnnops, whose extension links against torch)
from test_benchmarks import LIMITS, TINY

import cnnops
from benchmarks import history, report, runner, timing
from cnnops import models

# --- inference rows: whole classifiers, torch eager / torch.compile / cnnops optimised

INFER_SETTINGS = dict(budget=timing.Budget(seconds=0.01, min_reps=2, max_reps=3, warmup=1),
                      progress=False)


def _tiny_infer_cases():
    from benchmarks.inference_cases import InferenceCase
    return [InferenceCase("infer_resnet18_b2_32", "cnnops", "resnet18", (2, 3, 32, 32), 10),
            InferenceCase("infer_mobilenet_v2_b1_64", "torchvision", "mobilenet_v2",
                          (1, 3, 64, 64), 10)]


def test_inference_cases_plan_budget_family_and_resize():
    from benchmarks.cases import cases_for
    from benchmarks.inference_cases import INFERENCE_CASES, InferenceCase, resized
    assert [(c.builder, c.input_shape[0], c.input_shape[2]) for c in INFERENCE_CASES] == [
        ("resnet50", 1, 224), ("resnet50", 16, 224), ("mobilenet_v2", 1, 224),
        ("efficientnet_b0", 1, 224), ("xception", 1, 299)]
    assert cases_for("cpu")[-5:] == INFERENCE_CASES
    assert not any(isinstance(c, InferenceCase) for c in cases_for("cuda"))
    assert cases_for("cuda", layers=False, inference=True)[-5:] == INFERENCE_CASES
    case = INFERENCE_CASES[0]
    assert runner._layouts_of(case, ("nchw", "channels_last")) == ["channels_last"]
    assert runner._layouts_of(case, ("nchw",)) == ["nchw"]
    assert runner._layouts_of(TINY[0], ("nchw", "channels_last")) == ("nchw", "channels_last")
    assert case.modes == ("fwd",)
    budget = runner.row_budget(case, runner.DEFAULT_BUDGET)
    assert (budget.seconds, budget.min_reps, budget.warmup) == (5.0, 3, 1)
    assert history.family_of(dict(case=case.name, op=case.op)) == "inference"
    small = resized(INFERENCE_CASES + [TINY[0]], size=48, max_batch=4)
    assert [c.name for c in small] == ["infer_resnet50_b1_48", "infer_resnet50_b4_48",
                                       "infer_mobilenet_v2_b1_48", "infer_efficientnet_b0_b1_48",
                                       "infer_xception_b1_48", "tiny3x3"]
    assert small[1].input_shape == (4, 3, 48, 48) and small[-1] is TINY[0]
    assert len(resized(INFERENCE_CASES, max_batch=1)) == 4  # resnet50 b1 once


def test_randomised_batch_norm_statistics_matter():
    """The inference rows' BatchNorm layers are far from their defaults (mean 0, var 1), so
    an optimiser that dropped or misused the running statistics fails the check."""
    from benchmarks.inference_cases import randomise_batch_norm
    torch.manual_seed(0)
    net = randomise_batch_norm(models.resnet18(num_classes=10), (3, 32, 32))
    assert not net.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = net(x)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                assert (m.running_var - 1).abs().max() > 0.1 and m.running_mean.abs().max() > 0.01
                assert (m.weight - 1).abs().max() > 0.1 and m.bias.abs().max() > 0.01
                m.reset_running_stats()
        y_default = net(x)
    assert (y - y_default).abs().max() > 1e-2 * y.abs().max()


def test_inference_rows_without_optimize_for_inference_are_errors(monkeypatch):
    from benchmarks.inference_cases import InferenceCase
    monkeypatch.delattr(cnnops, "optimize_for_inference", raising=False)
    case = InferenceCase("infer_simple_cnn_b1_28", "cnnops", "simple_cnn", (1, 1, 28, 28), 10)
    result = runner.run_suite([case], runner.Settings(**INFER_SETTINGS), limits=LIMITS)
    (row,) = result["rows"]
    assert "optimize_for_inference is missing" in row["error"] and row["passed"] is False
    assert "variants" not in row and "speedup" not in row           # nothing timed
    assert result["summary"]["errors"] == 1 and result["summary"]["geomean_speedup"]["inference"] is None
    md = report.markdown(result)
    assert "| simple_cnn | 1 | 28x28 | - |" in md and "optimize_for_inference is missing" in md


@pytest.fixture(scope="module")
def inference_run(tmp_path_factory):
    """Two tiny inference rows (a cnnops.models resnet18 and a torchvision mobilenet_v2)
    without torch.compile, and the files written."""
    settings = runner.Settings(**INFER_SETTINGS, inference_compile=False)
    result = runner.run_suite(_tiny_infer_cases(), settings, limits=LIMITS)
    return result, report.write_outputs(result, tmp_path_factory.mktemp("inference"))


def test_inference_rows_times_speedups_and_check(inference_run):
    from benchmarks.inference_cases import VARIANTS
    from benchmarks.model_cases import _counts
    result, paths = inference_run
    assert result["summary"]["failed"] == 0, [r.get("error") for r in result["rows"]]
    r18, mnv2 = result["rows"]
    assert [(r["case"], r["layout"], r["mode"], r["op"]) for r in result["rows"]] == [
        ("infer_resnet18_b2_32", "channels_last", "fwd", "inference"),
        ("infer_mobilenet_v2_b1_64", "channels_last", "fwd", "inference")]
    assert r18["flop"] == 2 * _counts("resnet18", 10, (3, 32, 32))[0]  # hooks on the torch twin
    for row in (r18, mnv2):
        v = row["variants"]
        assert list(v) == list(VARIANTS) and v["compile"] is None
        assert row["compile_s"] is None and row["compile_error"] is None
        for name in ("eager_nchw", "eager_channels_last", "cnnops"):
            assert 2 <= v[name]["reps"] == len(v[name]["times_ms"]) <= 3
        best = min(("eager_nchw", "eager_channels_last"), key=lambda n: v[n]["median_ms"])
        assert row["torch_variant"] == best and row["torch"] == v[best] and row["cnnops"] == v["cnnops"]
        assert row["speedup"] == pytest.approx(v[best]["median_ms"] / v["cnnops"]["median_ms"])
        assert row["speedup_vs_nchw"] == pytest.approx(
            v["eager_nchw"]["median_ms"] / v["cnnops"]["median_ms"])
        assert row["speedup_vs_compile"] is None and row["speedup"] <= row["speedup_vs_nchw"]
        chk = row["check"]
        assert chk["passed"] and chk["tolerance"] == 1e-4 and chk["reference"].startswith("torch eager")
        assert chk["max_rel_err"] <= 1e-4
        assert set(chk["torch_variant_errors"]) == {"eager_channels_last"}
        assert row["optimize_s"] > 0
    data = json.loads(paths["json"].read_text())
    assert data["settings"]["inference_compile"] is False
    assert data["summary"]["geomean_speedup"]["inference"] == pytest.approx(
        history.geomean([r18["speedup"], mnv2["speedup"]]), abs=1e-3)


def test_inference_table_in_the_markdown_and_terminal(inference_run):
    result, paths = inference_run
    md = paths["markdown"].read_text()
    assert "## Inference" in md and "left out of this run (--no-compile)" in md
    r18 = result["rows"][0]
    cells = md.split("| resnet18 | 2 | 32x32 | ")[1].split("\n")[0].split(" | ")
    assert cells[2:4] == ["-", "-"]  # no compile column
    assert cells[4].startswith(f"{r18['cnnops']['median_ms']:.2f} ±")
    assert cells[5].startswith(f"{r18['speedup']:.2f}x (")
    assert cells[-1].rstrip(" |") == "ok"
    assert "| mobilenet_v2 | 1 | 64x64 |" in md
    assert "geomean speedup (rows): inference" in md
    text = report.table(result)
    assert "inference rows (ms per batch" in text and "infer_resnet18_b2_32" in text


def test_inference_check_fails_on_wrong_logits(monkeypatch):
    """An optimised model whose logits are 1e-3 off (relative) fails the row."""
    real = cnnops.optimize_for_inference

    class OffByOnePerMille(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x) * 1.001
    monkeypatch.setattr(cnnops, "optimize_for_inference",
                        lambda model, **kw: OffByOnePerMille(real(model, **kw)))
    settings = runner.Settings(**INFER_SETTINGS, inference_compile=False)
    result = runner.run_suite(_tiny_infer_cases()[:1], settings, limits=LIMITS)
    (row,) = result["rows"]
    assert row["error"] is None and row["passed"] is False and result["summary"]["failed"] == 1
    assert row["check"]["max_rel_err"] == pytest.approx(1e-3, rel=0.05)
    assert "| FAIL |" in report.markdown(result)


def test_inference_compile_column_and_a_failing_compile(monkeypatch):
    """torch.compile with freezing on a small model (a real compile, about 10 s): its own
    time, compile_s and error against eager; then a compile that raises is reported in
    the row, the other variants still timed."""
    import torch._inductor.config as inductor_config

    from benchmarks import inference_report
    from benchmarks.inference_cases import InferenceCase
    case = InferenceCase("infer_simple_cnn_b1_28", "cnnops", "simple_cnn", (1, 1, 28, 28), 10)
    settings = runner.Settings(**INFER_SETTINGS)
    seen = []
    compile_ = torch.compile

    def spy(model, **kw):
        seen.append(inductor_config.freezing)
        return compile_(model, **kw)
    monkeypatch.setattr(torch, "compile", spy)
    (row,) = runner.run_suite([case], settings, limits=LIMITS)["rows"]
    assert seen == [True] and inductor_config.freezing is False  # set for the row only
    assert row["passed"] and row["compile_error"] is None and row["compile_s"] > 0
    assert row["variants"]["compile"]["reps"] >= 2
    assert row["speedup_vs_compile"] == pytest.approx(
        row["variants"]["compile"]["median_ms"] / row["cnnops"]["median_ms"])
    assert row["check"]["torch_variant_errors"]["compile"]["max_rel_err"] < 1e-4

    def broken(model, **kw):
        raise RuntimeError("inductor: no C++ compiler")
    monkeypatch.setattr(torch, "compile", broken)
    result = runner.run_suite([case], settings, limits=LIMITS)
    (row,) = result["rows"]
    assert row["error"] is None and row["passed"] and result["summary"]["failed"] == 0
    assert row["compile_error"] == "RuntimeError: inductor: no C++ compiler"
    assert row["variants"]["compile"] is None and row["speedup_vs_compile"] is None
    assert row["variants"]["eager_nchw"]["reps"] >= 2
    cells = inference_report.row_cells(row)
    assert cells[5:7] == ["ERROR", "-"]
    md = "\n".join(inference_report.markdown_lines(result))
    assert "- infer_simple_cnn_b1_28: torch.compile failed: RuntimeError: inductor" in md
