"""A live progress bar on stderr: tqdm when it is installed, else one rewritten line."""
import sys

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - depends on the environment
    tqdm = None


class Progress:
    def __init__(self, total, enabled=True):
        self.total, self.done, self.enabled = total, 0, enabled
        self.bar = tqdm(total=total, file=sys.stderr, unit="row", dynamic_ncols=True) \
            if enabled and tqdm is not None else None

    def start(self, label):
        if self.bar is not None:
            self.bar.set_description(label)
        elif self.enabled:
            sys.stderr.write(f"\r[{self.done + 1}/{self.total}] {label:<60}")
            sys.stderr.flush()

    def step(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def write(self, message):
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        elif self.enabled:
            sys.stderr.write("\r" + message + "\n")

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            sys.stderr.write("\n")
