"""Pre-packing of fused convolutions' filters (the weight freeze hook).

The C++ extension may offer ``freeze_filter(tensor)``, which packs a filter into the
micro-kernel's layout once and keeps it for the tensor's lifetime; builds without it
repack on first use (the filter cache), so the call is optional.
"""
from .. import _C


def _freeze_weight(tensor):
    """Asks the extension to pre-pack `tensor` (a fused conv's weight buffer), if it can."""
    # Looked up at each call, not at import: the function arrives with newer builds.
    if hasattr(_C, "freeze_filter"):
        _C.freeze_filter(tensor)
