"""InferenceReport: what optimize_for_inference fused, and what it left and why.

Each fused chain is one row, named after the modules it absorbed
(``layer1.0.conv3+bn3+add+relu``) and classified by its pattern (``conv+bn+add+relu``);
each thing left alone is one row with the reason. ``counts`` gives the fused rows per
pattern, so tests can assert that fusion still happens; ``str(report)`` is a table.
"""
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fused:
    name: str  # the conv's qualified name, then the steps it absorbed
    pattern: str  # e.g. "conv+bn+relu", "sepconv+bn", "conv+bn+add+relu"


@dataclass(frozen=True)
class Left:
    name: str  # qualified name of the module (or graph node) left as it was
    reason: str


@dataclass
class InferenceReport:
    fused: list = field(default_factory=list)
    left: list = field(default_factory=list)

    def add_fused(self, name, pattern):
        self.fused.append(Fused(name, pattern))

    def add_left(self, name, reason):
        entry = Left(name or "<root>", reason)
        if entry not in self.left:  # the same refusal can be met from two directions
            self.left.append(entry)

    @property
    def counts(self):
        """{pattern: number of fused chains}, most frequent first."""
        return dict(Counter(f.pattern for f in self.fused).most_common())

    def count(self, pattern):
        return sum(1 for f in self.fused if f.pattern == pattern)

    @property
    def folded_batchnorms(self):
        """How many BatchNorm2d were folded into a convolution."""
        return sum(1 for f in self.fused if "+bn" in f.pattern)

    def __str__(self):
        lines = [f"cnnops inference report: {len(self.fused)} fused, {len(self.left)} left"]
        lines += _table(("pattern", "count"), [(p, str(n)) for p, n in self.counts.items()])
        lines += _table(("fused", "pattern"), [(f.name, f.pattern) for f in self.fused])
        lines += _table(("left", "reason"), [(e.name, e.reason) for e in self.left])
        return "\n".join(lines)


def _table(header, rows):
    """A blank line, then header and rows in two left-aligned columns (nothing if no rows)."""
    if not rows:
        return []
    width = max(len(r[0]) for r in [header, *rows])
    rule = "-" * width + "  " + "-" * max(len(r[1]) for r in [header, *rows])
    return ["", f"{header[0]:<{width}}  {header[1]}", rule] + [f"{a:<{width}}  {b}" for a, b in rows]
