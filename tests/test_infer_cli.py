"""python -m cnnops.infer end to end on a tiny model trained by python -m cnnops.train
(resnet18 on 16x16 digits, two steps: its BatchNorm statistics have moved from their
defaults): the printed lines, the JSON summary, predictions checked against the model run
directly, and the optimised model's predictions against the unoptimised model's. The tests
of the optimised model skip while cnnops has no optimize_for_inference."""
import json

import pytest
import torch

import cnnops
from cnnops.infer import cli as infer_cli
from cnnops.train import cli as train_cli

TINY_DIGITS = ["--model", "resnet18", "--dataset", "digits", "--image-size", "16",
               "--train-size", "40", "--test-size", "20", "--batch-size", "8", "--max-steps", "2",
               "--epochs", "1", "--no-progress"]
needs_optimize = pytest.mark.skipif(not hasattr(cnnops, "optimize_for_inference"),
                                    reason="cnnops.optimize_for_inference has not landed")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("infer") / "digits"
    train_cli.main([str(a) for a in TINY_DIGITS + ["--out", out]])
    return out


def run_infer(argv, capsys):
    summary = infer_cli.main([str(a) for a in argv])
    printed = capsys.readouterr().out.strip().splitlines()
    assert json.loads(printed[-1]) == json.loads(json.dumps(summary))
    return summary, printed


def direct_top1(run_dir, indices):
    """The class names the trained model itself gives test images `indices`, and their labels."""
    model, args, _ = train_cli.load_trained(run_dir)
    test = train_cli.load_data(args)[1]
    x, y = test.batch(torch.tensor(indices))
    with torch.no_grad():
        top = model(x).argmax(1)
    return [test.class_names[int(i)] for i in top], [test.class_names[int(i)] for i in y]


@needs_optimize
def test_optimised_and_unoptimised_predictions_agree(digits_run, capsys):
    argv = ["--checkpoint", digits_run, "--image", "test:7", "sklearn:china.jpg",
            "--test-set", "5", "--top-k", "3", "--repeats", "2"]
    summary, printed = run_infer(argv, capsys)
    specs = ["test:7", "sklearn:china.jpg"] + [f"test:{i}" for i in range(5)]
    assert [r["image"] for r in summary["images"]] == specs
    assert summary["optimized"] and summary["optimize_s"] > 0
    top1, labels = direct_top1(digits_run, [7, 0, 1, 2, 3, 4])
    records = [r for r in summary["images"] if r["image"] != "sklearn:china.jpg"]
    assert [r["label"] for r in records] == labels
    assert [r["top1"]["unoptimized"] for r in records] == top1
    for r in summary["images"]:
        assert r["top1"]["optimized"] == r["top1"]["unoptimized"]
        assert r["top"][0][0] == r["top1"]["optimized"] and len(r["top"]) == 3
        probs = [p for _, p in r["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-5
        assert r["ms"]["optimized"] > 0 and r["ms"]["unoptimized"] > 0
    assert summary["agree"] == len(specs) and summary["max_probability_difference"] <= 1e-4
    assert summary["labelled"] == 6
    right = sum(t == y for t, y in zip(top1, labels)) / 6
    assert summary["accuracy"] == pytest.approx({"optimized": right, "unoptimized": right})
    lines = [line for line in printed if line.startswith(("test:", "sklearn:"))]
    assert len(lines) == len(specs) and "optimised" in lines[0] and "speedup" in lines[0]
    assert lines[0].split()[:2] == ["test:7", "top-3:"] and f"true {labels[0]}" in lines[0]
    assert any(line.startswith("optimised and unoptimised agree on the top class of 7 of 7")
               for line in printed)


def test_no_optimize_runs_the_model_alone(digits_run, capsys):
    summary, printed = run_infer(["--checkpoint", digits_run, "--test-set", "3", "--no-optimize",
                                  "--repeats", "1", "--top-k", "20"], capsys)
    top1, labels = direct_top1(digits_run, [0, 1, 2])
    assert [r["top1"] for r in summary["images"]] == [{"unoptimized": t} for t in top1]
    assert [r["label"] for r in summary["images"]] == labels
    assert all(len(r["top"]) == 10 for r in summary["images"])     # all of the classes
    assert not summary["optimized"] and summary["optimize_s"] is None and "agree" not in summary
    assert list(summary["median_ms"]) == ["unoptimized"]
    assert not any("optimised" in line.replace("unoptimised", "") for line in printed[:-1])


def test_without_optimize_for_inference_the_command_says_so(digits_run, monkeypatch, capsys):
    monkeypatch.delattr(cnnops, "optimize_for_inference", raising=False)
    with pytest.raises(SystemExit) as e:
        infer_cli.main(["--checkpoint", str(digits_run)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no optimize_for_inference" in err and "--no-optimize" in err


@pytest.mark.parametrize("argv, message", [
    (["--test-set", "21"], "--test-set 21: the test set has 20 images"),
    (["--image", "test:20"], "the test set has 20 images"),
    (["--image", "sklearn:x.jpg"], "sample images are"),
    (["--top-k", "0"], "--top-k must be at least 1"),
])
def test_command_errors(digits_run, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        infer_cli.main([str(a) for a in argv + ["--checkpoint", digits_run, "--no-optimize"]])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
