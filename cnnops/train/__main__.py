"""python -m cnnops.train ... (also under torchrun --nproc_per_node=N -m cnnops.train ...)."""
import torch  # noqa: F401  (before cnnops: its extension links against torch's libraries)

from cnnops.train.cli import main

main()
