"""Checkpoints: the full training state written after every epoch (and read by --resume),
and the partial loading of weights for transfer learning (--weights).

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so it loads
with torch.load(weights_only=True):
    model      state_dict of the bare model (no DDP "module." prefix)
    optimizer, scheduler   state_dicts of the current phase's
    epoch      epochs completed; training resumes at this (0-based) epoch
    phase      name of the phase the optimizer belongs to ("train" or "finetune")
    history    per-epoch metrics so far
    args       the command's options (a dict)
    rng        torch (and CUDA) random states of every process, by rank
    num_classes, model_name, format
"""
import os
import pathlib

import torch

FORMAT = 1
FILENAME = "checkpoint.pt"
_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


def save(path, state):
    """Writes `state` to `path` atomically (a crash mid-write leaves the previous file)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def write_text_atomic(path, text):
    """Writes text to `path` through a temporary file, as save does."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load(path):
    """The checkpoint at `path` (a file, or a directory holding checkpoint.pt)."""
    return torch.load(resolve(path), map_location="cpu", weights_only=True)


def resolve(path):
    """`path`, or path/checkpoint.pt when it is a directory."""
    path = pathlib.Path(path)
    return path / FILENAME if path.is_dir() else path


def state_dict_of(obj):
    """The model state_dict inside a training checkpoint, a {"state_dict": ...} wrapper or a
    plain state_dict, with DDP / torch.compile prefixes removed."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError("expected a training checkpoint or a state_dict (a dict of tensors)")
    out = {}
    for name, tensor in obj.items():
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
        out[name] = tensor
    return out


def load_matching(model, state_dict):
    """Copies into `model` every tensor of `state_dict` whose name and shape match one of
    the model's. Returns (loaded names, skipped {name: reason}) where skipped lists the
    checkpoint's tensors not used and the model's tensors left as they were."""
    own = model.state_dict()
    loaded, skipped = [], {}
    for name, tensor in state_dict.items():
        if name not in own:
            skipped[name] = "not in the model"
        elif own[name].shape != tensor.shape:
            skipped[name] = (f"shape {tuple(tensor.shape)} in the checkpoint, "
                             f"{tuple(own[name].shape)} in the model")
        else:
            loaded.append(name)
    for name in own:
        if name not in state_dict:
            skipped[name] = "not in the checkpoint"
    model.load_state_dict({n: state_dict[n] for n in loaded}, strict=False)
    return loaded, skipped


def rng_state():
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
