"""Several processes (torchrun) as one training run: DistributedDataParallel with gloo on
the CPU and nccl on CUDA.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; without them
(or with WORLD_SIZE=1) everything here is the single-process no-op. Each process trains
on its own share of every global batch (DistributedSampler's interleaved split), DDP
averages the gradients, and metric sums are all-reduced, so N processes with --batch-size
B follow one process with --batch-size N*B. Only rank 0 prints and writes files.
"""
import datetime
import gc
import os
import sys

import torch
import torch.distributed as dist


def env_world_size():
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_enabled():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if is_enabled() else 0


def world_size():
    return dist.get_world_size() if is_enabled() else 1


def is_main():
    return rank() == 0


def local_rank():
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device):
    """Joins the process group torchrun describes (if any) and returns the torch.device this
    process uses: cuda:LOCAL_RANK under nccl, else `device`."""
    device = torch.device(device)
    if env_world_size() > 1 and not is_enabled():
        if device.type == "cuda":
            torch.cuda.set_device(local_rank())
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=10))
    if is_enabled() and device.type == "cuda":
        device = torch.device("cuda", local_rank())
    return device


def cleanup(wait_for_peers=True):
    """Leaves the process group, after a barrier unless this process failed: tearing gloo
    down while a peer still talks to it can abort the peer ("terminate called without an
    active exception", seen twice in CI); after a failure the peers may never arrive.

    DistributedDataParallel's reducer keeps the process group alive and sits in reference
    cycles, so without a collection here the group's C++ threads would be torn down during
    interpreter finalization, where gloo can abort the process; collecting first ends
    them while Python is whole."""
    if is_enabled():
        if wait_for_peers:
            dist.barrier()
        gc.collect()
        dist.destroy_process_group()
        gc.collect()


def wrap(model, device):
    """DistributedDataParallel around `model` when running distributed (else the model).
    Built per training phase: DDP registers the parameters that require grad when it is
    constructed, so freezing or unfreezing needs a new wrapper."""
    if not is_enabled():
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_sum(tensor):
    """The element-wise sum of `tensor` over the processes (a copy; the tensor on one)."""
    if not is_enabled():
        return tensor
    backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = tensor.to(backend_device).clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.to(tensor.device)


def all_gather_object(obj):
    """[obj of rank 0, obj of rank 1, ...] ([obj] on one process)."""
    if not is_enabled():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier():
    if is_enabled():
        dist.barrier()


def shard(indices):
    """This process's share of an ordered list of sample indices (evaluation): every
    world_size-th from rank on, no sample repeated, so summed metrics are exact."""
    return indices[rank()::world_size()]


def train_indices(n, seed, epoch, shuffle=True):
    """This process's samples for one training epoch, as torch's DistributedSampler picks
    them (a permutation from seed + epoch, padded to a multiple of the world size, rank r
    taking positions r, r + world, ...). Consecutive batches of B on each of N processes
    together hold exactly the samples of consecutive batches of N*B on one process."""
    sampler = torch.utils.data.DistributedSampler(range(n), num_replicas=world_size(),
                                                  rank=rank(), shuffle=shuffle, seed=seed)
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.int64)


def _spawned(index, world, port, fn, args):
    """torch.multiprocessing.spawn target: torchrun's environment for process `index`,
    then fn(*args)."""
    os.environ.update(RANK=str(index), LOCAL_RANK=str(index), WORLD_SIZE=str(world),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    try:
        fn(*args)
    except BaseException:
        cleanup(wait_for_peers=False)
        raise
    cleanup()
    # A worker that succeeded ends here, without interpreter finalization: gloo's threads
    # and the TCP store of rank 0 then cannot race the teardown of Python objects (the
    # parent only reads the exit code; fn's results are in files it wrote).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn(fn, args, nprocs, port):
    """Runs fn(*args) in `nprocs` fresh processes set up as torchrun would set them up
    (localhost:port, one thread each); fn must be importable (a module-level function)."""
    import torch.multiprocessing as mp
    mp.spawn(_spawned, args=(nprocs, port, fn, args), nprocs=nprocs, join=True)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
