"""Loading a checkpoint into a freshly built model."""
import os

import torch


def load_weights(model, weights):
    """Loads `weights` (None, a path to a saved state_dict, or a state_dict already in
    memory) into `model` strictly: every key present, no key extra. Returns the model."""
    if weights is None:
        return model
    if isinstance(weights, (str, os.PathLike)):
        weights = torch.load(weights, map_location="cpu", weights_only=True)
    if not isinstance(weights, dict):
        raise TypeError(f"cnnops.models: expected weights to be None, a path or a state_dict, "
                        f"got {type(weights).__name__}")
    model.load_state_dict(weights, strict=True)
    return model
