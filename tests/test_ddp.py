"""Two processes under DistributedDataParallel (gloo, CPU) take the same optimizer steps as
one process on the combined batches: directly through the library (torch.multiprocessing,
float64 and float32) and through the command under torchrun."""
import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

import cnnops
from cnnops.train import cli, data, distributed, loop

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS, BATCH = 3, 4          # per process; one process takes batches of 2 * BATCH

pytestmark = pytest.mark.skipif(not torch.distributed.is_available()
                                or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def stand_in_model(dtype):
    """cnnops convolutions and pooling, a Linear head: no BatchNorm, no dropout, so the
    two-process and one-process runs compute the same function."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        cnnops.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), cnnops.nn.MaxPool2d(2),
        cnnops.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), cnnops.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 2 * 2, 5)).to(dtype)


def problem():
    g = torch.Generator().manual_seed(1)
    images = torch.randn(32, 3, 8, 8, generator=g)
    targets = torch.randint(0, 5, (32,), generator=g)
    return data.TensorData(images, targets, [str(i) for i in range(5)], "classification",
                           max_shift=1)


def train(dtype, batch_size):
    """STEPS SGD steps (momentum, weight decay) on this process's share of epoch 0;
    returns the model and the all-reduced metrics."""
    device = distributed.setup("cpu")
    model = stand_in_model(dtype)
    net = distributed.wrap(model, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    train_set = problem()
    indices = distributed.train_indices(len(train_set), seed=0, epoch=0)
    metrics = loop.train_epoch(net, train_set, indices, batch_size, opt, None, device,
                               augmentation=train_set.augmentation(0, 0), max_steps=STEPS,
                               dtype=dtype)
    return model, metrics


def ddp_worker(out_path, dtype):
    """Runs in each spawned process (torchrun's environment already set)."""
    model, metrics = train(dtype, BATCH)
    assert distributed.world_size() == 2
    if distributed.is_main():
        torch.save({"model": model.state_dict(), "metrics": metrics}, out_path)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_ddp_steps_equal_one_process_on_the_combined_batch(dtype, tmp_path):
    out = tmp_path / "ddp.pt"
    distributed.spawn(ddp_worker, (str(out), dtype), nprocs=2, port=distributed.free_port())
    ddp = torch.load(out, weights_only=True)
    single, metrics = train(dtype, 2 * BATCH)
    start = stand_in_model(dtype).state_dict()
    rtol, atol = (1e-12, 1e-12) if dtype == torch.float64 else (1e-5, 1e-6)
    for name, tensor in single.state_dict().items():
        assert not torch.equal(tensor, start[name]), f"{name} did not train"
        torch.testing.assert_close(ddp["model"][name], tensor, rtol=rtol, atol=atol,
                                   msg=lambda m, name=name: f"{name}: {m}")
    assert ddp["metrics"]["samples"] == metrics["samples"] == STEPS * 2 * BATCH
    assert ddp["metrics"]["loss"] == pytest.approx(metrics["loss"], rel=1e-5)
    assert ddp["metrics"]["acc"] == metrics["acc"]


def test_torchrun_command_equals_one_process(tmp_path):
    """`torchrun --nproc_per_node=2 -m cnnops.train` with --batch-size 4 ends where the
    single-process command with --batch-size 8 does; only rank 0 prints and writes."""
    common = ["--model", "simple_cnn", "--dropout", "0", "--dataset", "digits",
              "--image-size", "8", "--train-size", "64", "--test-size", "30", "--epochs", "1",
              "--max-steps", str(STEPS), "--optimizer", "sgd", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={distributed.free_port()}", "-m", "cnnops.train", *common,
           "--batch-size", str(BATCH), "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summaries = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1, proc.stdout                    # rank 0 only
    ddp = summaries[0]
    assert ddp["processes"] == 2 and ddp["test_samples"] == 30

    threads = torch.get_num_threads()
    try:
        single = cli.main(common + ["--batch-size", str(2 * BATCH), "--out", str(tmp_path / "one")])
    finally:
        torch.set_num_threads(threads)
    a = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    assert a["world_size"] == 2 and b["world_size"] == 1
    for name, tensor in b["model"].items():
        torch.testing.assert_close(a["model"][name], tensor, rtol=1e-5, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")
    # metrics are all-reduced: the whole test set and all training samples, not rank 0's share
    for key in ("test_loss", "train_loss"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-4), key
    assert ddp["test_acc"] == single["test_acc"] and ddp["train_acc"] == single["train_acc"]
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == \
        ["checkpoint.pt", "curves.png", "metrics.json"]
