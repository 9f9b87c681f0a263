"""The memory layouts the suite runs, by their command-line names."""
import torch

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
