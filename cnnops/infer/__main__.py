"""python -m cnnops.infer --checkpoint RUN [--image SPEC ...] [--test-set K] ..."""
import torch  # noqa: F401  (before cnnops: its extension links against torch's libraries)

from cnnops.infer.cli import main

main()
