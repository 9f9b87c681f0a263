"""python -m cnnops.explain {layers,activations,filters,gradcam,localise} --checkpoint ..."""
import torch  # noqa: F401  (before cnnops: its extension links against torch's libraries)

from cnnops.explain.cli import main

main()
