"""torchvision for the tests, benchmarks and examples (not a dependency of the ops).

The torchvision wheel that matches a CPU-only torch may be a CUDA build whose C++ ops
(nms, roi_align...) cannot load; its import then fails while registering fake kernels
for them. The models themselves are plain Python, so in that case the two op schemas
that the import needs are declared and the import retried: models work, the C++ ops
(which cnnops never uses) do not.
"""
import importlib
import sys

import torch

_state = {}


def load_torchvision():
    """The torchvision module, or None when it is not installed."""
    if "module" in _state:
        return _state["module"]
    try:
        module = importlib.import_module("torchvision")
    except ImportError:
        module = None
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "FRAGMENT")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _state["library"] = lib  # a dropped Library object would undefine the schemas
        module = importlib.import_module("torchvision")
    _state["module"] = module
    return module
