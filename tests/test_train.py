"""python -m cnnops.train: data sets, metrics, one-epoch runs and their files, resume,
transfer learning (--weights, --freeze-base, --finetune-epochs) and argument errors.

Everything here is tiny (8x8 to 16x16 images, a few samples, two steps); the full-accuracy
runs are commands in the README, not tests."""
import json
import math

import pytest
import torch

import cnnops.models
from cnnops.train import cli, data, loop, modeling

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# simple_cnn at 8x8: no BatchNorm, dropout 0.5, a second or two per run
TINY_DIGITS = ["--model", "simple_cnn", "--dataset", "digits", "--image-size", "8",
               "--train-size", "40", "--test-size", "20", "--batch-size", "8",
               "--max-steps", "2", "--no-progress"]
TINY_SHAPES = ["--model", "segmentation_fcn", "--dataset", "shapes", "--image-size", "16",
               "--train-size", "8", "--test-size", "4", "--batch-size", "4",
               "--max-steps", "2", "--no-progress"]


def run_cli(argv):
    return cli.main([str(a) for a in argv])


def load_ckpt(out):
    return torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- data sets

def test_shapes_deterministic_from_seed():
    a_img, a_mask = data.make_shapes(6, 32, seed=3)
    b_img, b_mask = data.make_shapes(6, 32, seed=3)
    c_img, _ = data.make_shapes(6, 32, seed=4)
    assert torch.equal(a_img, b_img) and torch.equal(a_mask, b_mask)
    assert not torch.equal(a_img, c_img)
    assert a_img.shape == (6, 3, 32, 32) and a_img.dtype == torch.uint8
    assert a_mask.shape == (6, 32, 32) and a_mask.dtype == torch.uint8


def test_shapes_masks_cover_the_shape_classes():
    images, masks = data.make_shapes(40, 32, seed=0)
    assert set(masks.unique().tolist()) == set(range(len(data.SHAPE_CLASSES)))
    # every image has some shape and some background
    per_image = masks.flatten(1)
    assert ((per_image > 0).any(1) & (per_image == 0).any(1)).all()
    # a shape's pixels differ in colour from the background's (before the noise: on average)
    img = images[0].float()
    fg, bg = masks[0] > 0, masks[0] == 0
    assert (img[:, fg].mean(1) - img[:, bg].mean(1)).norm() > 20


def test_shapes_sets_are_independent_streams():
    tr_small, te_small = data.shapes(16, seed=1, train_size=4, test_size=3)
    tr_big, te_big = data.shapes(16, seed=1, train_size=6, test_size=3)
    assert torch.equal(te_small.images, te_big.images)
    assert torch.equal(tr_small.images, tr_big.images[:4])
    assert tr_small.task == "segmentation" and tr_small.num_classes == 4
    x, y = tr_small.batch(torch.arange(4))
    assert x.dtype == torch.float32 and x.shape == (4, 3, 16, 16) and y.dtype == torch.int64


def test_shapes_cls_one_shape_per_image_labelled_by_its_mask():
    train, test = data.shapes_cls(16, seed=1, train_size=30, test_size=12)
    assert train.task == "classification" and train.class_names == ("circle", "square", "triangle")
    assert train.images.shape == (30, 3, 16, 16) and train.masks.shape == (30, 16, 16)
    assert train.masks.dtype == torch.bool and train.masks.flatten(1).any(1).all()
    # the same generator as shapes (one shape each, larger): the label is the mask's class
    images, masks = data.make_shapes(12, 16, seed=[1, 3], max_shapes=1, sizes=data.SHAPE_CLS_SIZES)
    assert torch.equal(test.images, images) and torch.equal(test.masks, masks > 0)
    assert torch.equal(test.targets, masks.flatten(1).amax(1).long() - 1)
    assert set(train.targets.tolist()) == {0, 1, 2}
    _, bigger = data.shapes_cls(16, seed=1, train_size=40, test_size=12)
    assert torch.equal(bigger.images, test.images)                          # independent streams
    x, y = train.batch(torch.arange(4), train.augmentation(0, 0))            # flips: images only
    assert x.shape == (4, 3, 16, 16) and torch.equal(y, train.targets[:4])
    # to_input / to_pixels: how raw pixels become the model's input and back
    torch.testing.assert_close(train.to_input(train.images[:2].float() / 255),
                               train.batch(torch.arange(2))[0])
    torch.testing.assert_close(train.to_pixels(train.batch(torch.arange(2))[0]),
                               train.images[:2].float() / 255, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="too small"):
        data.shapes_cls(3, train_size=200, test_size=1)


def test_digits_to_input_matches_the_standardised_images():
    train, _ = data.digits(image_size=8, channels=1, train_size=20)
    from sklearn.datasets import load_digits
    raw = torch.from_numpy(load_digits().images).float() / 16
    x = train.images[:3]
    pixels = train.to_pixels(x)
    assert any(torch.allclose(pixels[0, 0], r, atol=1e-5) for r in raw)
    torch.testing.assert_close(train.to_input(pixels), x, rtol=0, atol=1e-5)


def test_digits_split_is_stratified_and_deterministic():
    train, test = data.digits(image_size=12, channels=3, seed=0)
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape == (1437, 3, 12, 12)
    assert torch.equal(train.images[:, 0], train.images[:, 2])        # grey replicated
    counts = torch.bincount(test.targets, minlength=10)
    totals = counts + torch.bincount(train.targets, minlength=10)
    assert ((counts.double() - 0.2 * totals.double()).abs() <= 1).all(), counts
    again, _ = data.digits(image_size=12, channels=3, seed=0)
    assert torch.equal(train.images, again.images) and torch.equal(train.targets, again.targets)
    other, _ = data.digits(image_size=12, channels=3, seed=1)
    assert not torch.equal(train.targets, other.targets)
    assert abs(train.images.mean().item()) < 1e-4 and abs(train.images.std().item() - 1) < 1e-3


def test_digits_subset_is_stratified():
    train, test = data.digits(image_size=8, channels=1, train_size=100, test_size=50)
    assert (len(train), len(test)) == (100, 50)
    assert torch.bincount(train.targets, minlength=10).min() >= 9
    with pytest.raises(ValueError, match="only 360"):
        data.digits(image_size=8, test_size=1000)


def test_shift_augmentation_is_per_sample():
    x = torch.zeros(2, 1, 5, 5)
    x[:, 0, 2, 2] = 1.0
    out = data.shift(x, torch.tensor([[1, 0], [-2, 1]]), fill=torch.tensor([-1.0]))
    assert out[0, 0, 3, 2] == 1 and out[1, 0, 0, 3] == 1
    assert out[0, 0, 0].eq(-1).all()                                   # row shifted in
    assert out[1, 0, :, 0].eq(-1).all() and out[1, 0, 3:].eq(-1).all()
    train, _ = data.digits(image_size=16, channels=1, train_size=30)
    aug = train.augmentation(seed=0, epoch=0)
    a, _ = train.batch(torch.tensor([3, 5, 7]), aug)
    b, _ = train.batch(torch.tensor([7, 3]), aug)
    assert torch.equal(a[0], b[1]) and torch.equal(a[2], b[0])          # keyed by sample
    assert not torch.equal(aug.shifts, train.augmentation(seed=0, epoch=1).shifts)


def test_flips_move_masks_with_images():
    train, _ = data.shapes(16, seed=0, train_size=8, test_size=1)
    aug = train.augmentation(seed=0, epoch=0)
    x, y = train.batch(torch.arange(8), aug)
    x0, y0 = train.batch(torch.arange(8))
    for i in range(8):
        fx, fy = aug.flip[i].tolist()
        dims = [d for d, f in ((-1, fx), (-2, fy)) if f]
        ex, ey = (x0[i].flip(dims), y0[i].flip(dims)) if dims else (x0[i], y0[i])
        assert torch.equal(x[i], ex) and torch.equal(y[i], ey)


# ----------------------------------------------------------------------------- metrics

def test_iou_against_hand_computed_values():
    target = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 2, 0])
    conf = loop.confusion_matrix(pred, target, 4)
    assert conf.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    iou = loop.iou_per_class(conf)
    # class 0: TP 1, FP 1, FN 1; class 1: TP 2, FP 1; class 2: TP 1, FN 1; class 3 absent
    assert iou[:3].tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(iou[3])
    assert loop.mean_iou(conf) == pytest.approx(0.5)
    # a class predicted but never present counts with IoU 0
    assert loop.mean_iou(loop.confusion_matrix(torch.tensor([3, 0]), torch.tensor([0, 0]), 4)) \
        == pytest.approx((1 / 2 + 0) / 2)
    # 2-D masks: the same counts as flattened
    assert torch.equal(loop.confusion_matrix(pred.reshape(2, 3), target.reshape(2, 3), 4), conf)


def test_warmup_cosine_schedule():
    f = modeling.warmup_cosine(2, 10)
    assert [f(0), f(1), f(2)] == pytest.approx([0.5, 1.0, 1.0])
    assert f(6) == pytest.approx(0.5) and f(10) == pytest.approx(0.0)


# ----------------------------------------------------------------------------- runs

def test_one_epoch_writes_checkpoint_metrics_and_png(tmp_path, capsys):
    out = tmp_path / "run"
    summary = run_cli(TINY_DIGITS + ["--epochs", "1", "--out", out])
    printed = capsys.readouterr().out.strip().splitlines()
    assert json.loads(printed[-1]) == summary
    assert "final test accuracy" in printed[-2]
    assert summary["epochs"] == 1 and 0 <= summary["test_acc"] <= 1 and summary["seconds"] > 0
    assert summary["test_samples"] == 20
    ckpt = load_ckpt(out)
    assert ckpt["epoch"] == 1 and ckpt["args"]["model"] == "simple_cnn"
    assert {"model", "optimizer", "scheduler", "history", "rng"} <= set(ckpt)
    assert ckpt["scheduler"]["last_epoch"] == 2                       # two steps taken
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["summary"] == summary and len(metrics["history"]) == 1
    assert {"train_loss", "train_acc", "test_loss", "test_acc"} <= set(metrics["history"][0])
    png = (out / "curves.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000


def test_shapes_cls_run_and_load_trained(tmp_path):
    out = tmp_path / "cls"
    summary = run_cli(["--model", "resnet18", "--dataset", "shapes_cls", "--image-size", "16",
                       "--train-size", "8", "--test-size", "4", "--batch-size", "4",
                       "--max-steps", "1", "--epochs", "1", "--no-progress", "--out", out])
    assert summary["dataset"] == "shapes_cls" and 0 <= summary["test_acc"] <= 1
    state = torch.get_rng_state()
    model, args, ckpt = cli.load_trained(out)
    assert torch.equal(torch.get_rng_state(), state)                 # the caller's RNG untouched
    assert not model.training and args.model == "resnet18" and args.in_channels == 3
    assert model.fc.out_features == 3 and ckpt["epoch"] == 1
    for name, tensor in ckpt["model"].items():
        assert torch.equal(model.state_dict()[name], tensor), name
    with pytest.raises(ValueError, match="not a checkpoint of python -m cnnops.train"):
        torch.save(ckpt["model"], tmp_path / "bare.pt")
        cli.load_trained(tmp_path / "bare.pt")


def test_segmentation_epoch_reports_iou(tmp_path):
    out = tmp_path / "seg"
    summary = run_cli(TINY_SHAPES + ["--epochs", "1", "--out", out])
    assert 0 <= summary["test_miou"] <= 1 and "test_acc" in summary
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert len(history[0]["test_iou"]) == 4
    assert (out / "curves.png").read_bytes().startswith(PNG_SIGNATURE)


def test_resume_continues_at_next_epoch_with_same_results(tmp_path, monkeypatch, capsys):
    argv = TINY_DIGITS + ["--epochs", "3"]
    run_cli(argv + ["--out", tmp_path / "whole"])
    whole = load_ckpt(tmp_path / "whole")

    class Crash(Exception):
        pass

    calls = []

    def crash_after_second_epoch(history, path, title=""):  # runs after each checkpoint
        calls.append(len(history))
        if len(history) == 2:
            raise Crash
    monkeypatch.setattr(cli, "plot_history", crash_after_second_epoch)
    with pytest.raises(Crash):
        run_cli(argv + ["--out", tmp_path / "cut"])
    assert load_ckpt(tmp_path / "cut")["epoch"] == 2
    monkeypatch.undo()
    capsys.readouterr()
    run_cli(["--out", tmp_path / "cut", "--resume", "--no-progress"])   # options from the ckpt
    printed = capsys.readouterr().out
    assert "at epoch 3 of 3" in printed and "epoch 1/3" not in printed and "epoch 3/3" in printed
    resumed = load_ckpt(tmp_path / "cut")
    assert resumed["epoch"] == 3
    for name, tensor in whole["model"].items():
        assert torch.equal(resumed["model"][name], tensor), name
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in whole["history"]]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed["history"]] == strip


def test_resume_of_a_finished_run_trains_nothing(tmp_path, capsys):
    out = tmp_path / "done"
    first = run_cli(TINY_DIGITS + ["--epochs", "1", "--out", out])
    again = run_cli(["--resume", out / "checkpoint.pt", "--no-progress"])
    assert again["epochs"] == 1 and again["test_acc"] == first["test_acc"]


def test_weights_with_other_class_count_replaces_head(tmp_path, capsys):
    torch.manual_seed(1)
    source = cnnops.models.simple_cnn(num_classes=5, in_channels=1, input_size=8)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}   # as DDP saves it
    torch.save(state, tmp_path / "five.pt")
    model, report = modeling.build_from_weights("simple_cnn", 10, 1, 8, tmp_path / "five.pt")
    assert report["head_replaced"] == 5 and report["skipped"] == {}
    assert model.fc.out_features == 10
    for name, tensor in source.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(model.state_dict()[name], tensor), name

    # through the command, from a training checkpoint; a 3-channel model: the stem is skipped
    out = tmp_path / "run"
    run_cli(TINY_DIGITS + ["--epochs", "1", "--in-channels", "3",
                           "--weights", tmp_path / "five.pt", "--out", out])
    printed = capsys.readouterr().out
    assert "new head for 10 classes (the weights had 5)" in printed
    assert "features.0.weight (shape (64, 1, 7, 7) in the checkpoint" in printed
    ckpt = load_ckpt(out)
    assert ckpt["model"]["fc.weight"].shape == (10, 64)
    model, report = modeling.build_from_weights("simple_cnn", 3, 3, 8, out / "checkpoint.pt")
    assert report["head_replaced"] == 10 and report["loaded"] == report["total"] - 2


def test_freeze_base_then_finetune(tmp_path, monkeypatch):
    torch.manual_seed(2)
    source = cnnops.models.mini_xception(num_classes=4, in_channels=1)
    torch.save({"model": source.state_dict()}, tmp_path / "src.pt")
    snapshots = []
    monkeypatch.setattr(cli, "plot_history", lambda *a, **k: snapshots.append(
        load_ckpt(tmp_path / "run")))
    run_cli(["--model", "mini_xception", "--dataset", "digits", "--image-size", "16",
             "--in-channels", "1", "--train-size", "40", "--test-size", "10",
             "--batch-size", "8", "--max-steps", "2", "--no-progress",
             "--weights", tmp_path / "src.pt", "--freeze-base", "--epochs", "1",
             "--finetune-epochs", "1", "--lr", "0.1", "--out", tmp_path / "run"])
    frozen, tuned = snapshots
    assert (frozen["phase"], tuned["phase"]) == ("train", "finetune")
    base = [k for k in source.state_dict() if not k.startswith("fc.")]
    for name in base:                               # parameters and BatchNorm statistics
        assert torch.equal(frozen["model"][name], source.state_dict()[name]), name
    assert frozen["model"]["fc.weight"].shape == (10, 1024)          # head: 4 -> 10 classes
    assert not torch.equal(frozen["model"]["fc.weight"], tuned["model"]["fc.weight"])
    changed = [n for n in base if not torch.equal(tuned["model"][n], frozen["model"][n])]
    assert "stem.0.weight" in changed and "blocks.3.main.1.pointwise_weight" in changed
    assert "stem.1.running_mean" in changed
    assert [h["phase"] for h in tuned["history"]] == ["train", "finetune"]
    assert tuned["history"][1]["lr"] < tuned["history"][0]["lr"]     # --finetune-lr = lr / 10


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("argv, message", [
    (["--model", "nope"], "unknown model 'nope'; expected one of"),
    (["--model", "segmentation_fcn", "--dataset", "digits"], "is a segmentation model"),
    (["--model", "resnet18", "--dataset", "shapes"], "is a classification model"),
    (["--dataset", "shapes", "--image-size", "60"], "multiple of 8"),
    (["--dataset", "shapes", "--in-channels", "1"], "must be 3"),
    (["--finetune-lr", "0.01"], "needs --finetune-epochs"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--batch-size", "-2"], "--batch-size must be at least 1"),
    (["--lr", "0"], "--lr must be positive"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["--image-size", "4"], "at least 8"),
    (["--dataset", "shapes_cls", "--image-size", "12"], "at least 16 for shapes_cls"),
    (["--dataset", "shapes_cls", "--in-channels", "1"], "must be 3"),
    (["--model", "segmentation_fcn", "--dataset", "shapes_cls"], "is a segmentation model"),
])
def test_argument_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_errors_needing_files(tmp_path, capsys):
    def error(argv):
        with pytest.raises(SystemExit) as e:
            run_cli(argv)
        assert e.value.code == 2
        return capsys.readouterr().err

    assert "no checkpoint at" in error(["--resume", "--out", tmp_path / "empty"])
    assert "--weights: no file" in error(["--weights", tmp_path / "missing.pt"])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert "cannot read it" in error(TINY_DIGITS + ["--weights", tmp_path / "junk.pt"])
    torch.save({"other.weight": torch.zeros(3)}, tmp_path / "other.pt")
    assert "no tensor matches a simple_cnn" in error(TINY_DIGITS + ["--weights",
                                                                     tmp_path / "other.pt"])
    assert "--test-size is 999 but the split has only 360" in error(
        ["--model", "simple_cnn", "--image-size", "8", "--test-size", "999"])
    out = tmp_path / "run"
    run_cli(TINY_DIGITS + ["--epochs", "1", "--out", out])
    assert "--lr 0.5 differs from the checkpoint's 0.002" in error(
        ["--out", out, "--resume", "--lr", "0.5"])
    assert "--batch-size 64 is larger than the 40 training samples" in error(
        TINY_DIGITS + ["--batch-size", "64", "--out", tmp_path / "b"])
    if not torch.cuda.is_available():
        assert "sees no CUDA device" in error(["--device", "cuda"])
