"""The batch sweep: GFLOP/s of one 3x3 and one 1x1 layer of ResNet-50 (at 224 px: the 3x3
256 -> 256 and the 1x1 1024 -> 256 convs of stage 3, at 14 x 14) against the batch size,
cnnops and torch, forward, in each layout of the run, with the measured peak as the
ceiling: where each library leaves the peak, and from which batch size on it stops
gaining.

Each point is an ordinary row (checked, then timed in interleaved blocks) run after the
suite's rows; the points go to the JSON's "sweep" record, not to its rows (so they are in
no family's geomean), and to <stem>-sweep.png beside the run's other files.

    python -m benchmarks sweep [--quick] [--layout ...]    # the sweep alone
    python -m benchmarks [--no-sweep]                      # the suite, then the sweep
"""
import warnings
from dataclasses import asdict, dataclass

from .cases import ConvCase

BATCHES = (1, 2, 4, 8, 16, 32, 64)
LAYERS = (
    ConvCase("sweep_r50_3x3_c256k256_14", "conv2d", (1, 256, 14, 14), (256, 256, 3, 3), padding=1),
    ConvCase("sweep_r50_1x1_c1024k256_14", "conv2d", (1, 1024, 14, 14), (256, 1024, 1, 1)),
)


@dataclass(frozen=True)
class SweepCase(ConvCase):
    layer: str = ""
    batch: int = 1
    modes = ("fwd",)
    # a point's timed repetitions: this fraction of the run's budget (5 s -> 0.2 s), at
    # least 3: 14 points per layout in about 10 s
    budget_fraction = 0.04
    budget_min_reps = 3


def sweep_cases(layers=None, batches=None):
    """One SweepCase per layer and batch size (default LAYERS, BATCHES), named <layer>_b<N>."""
    cases = []
    for layer in LAYERS if layers is None else layers:
        fields = asdict(layer)
        for batch in BATCHES if batches is None else batches:
            fields.update(name=f"{layer.name}_b{batch}", input_shape=(batch, *layer.input_shape[1:]))
            cases.append(SweepCase(**fields, layer=layer.name, batch=batch))
    return cases


def plan(layouts, cases=None):
    """(case, layout, mode) of every point, as runner.run_suite plans its rows."""
    return [(c, layout, "fwd") for c in (cases or sweep_cases()) for layout in layouts]


def _side(side):
    keys = ("median_ms", "iqr_rel", "reps", "gflops", "peak_fraction", "times_ms")
    return {k: side[k] for k in keys}


def record(rows, limits):
    """The JSON record of the sweep's timed rows: its layers, batch sizes, the peak, and
    one point per row (its batch, layout, check and both libraries' figures)."""
    points = []
    for row in rows:
        params = row["params"]
        point = dict(layer=params["layer"], batch=params["batch"], layout=row["layout"],
                     mode=row["mode"], case=row["case"], flop=row["flop"], passed=row["passed"],
                     error=row["error"])
        if not row["error"]:
            point.update(speedup=row["speedup"], cnnops=_side(row["cnnops"]), torch=_side(row["torch"]))
        points.append(point)
    known = {c.name: asdict(c) for c in LAYERS}
    layers = [dict(name=name, params=known.get(name))
              for name in dict.fromkeys(p["layer"] for p in points)]
    return dict(layers=layers, batches=sorted({p["batch"] for p in points}),
                runtime_s=sum(r.get("wall_s", 0.0) for r in rows),
                layouts=list(dict.fromkeys(p["layout"] for p in points)),
                peak_gflops=limits.get("peak_gflops"), peak_method=limits.get("peak_method"),
                failed=sum(1 for p in points if not p["passed"]), points=points)


def _series(sweep):
    """{(layer, layout): {batch: point}} of the timed points."""
    series = {}
    for p in sweep["points"]:
        if not p["error"]:
            series.setdefault((p["layer"], p["layout"]), {})[p["batch"]] = p
    return series


def table_cells(sweep):
    """Rows of [layer, layout, library, GFLOP/s per batch size...], and the header."""
    head = ["layer", "layout", "library"] + [f"b{b}" for b in sweep["batches"]]
    cells = []
    for (layer, layout), by_batch in _series(sweep).items():
        for lib in ("cnnops", "torch"):
            cells.append([layer, layout, lib] + [
                f"{by_batch[b][lib]['gflops']:.0f}" if b in by_batch else "-"
                for b in sweep["batches"]])
    return head, cells


def _peak(sweep):
    return "-" if sweep.get("peak_gflops") is None else f"{sweep['peak_gflops']:.1f}"


def text_lines(sweep):
    """The sweep as an aligned table, for the terminal."""
    head, cells = table_cells(sweep)
    rows = [head] + cells
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
             for r in rows]
    return [f"batch sweep, forward GFLOP/s (measured peak {_peak(sweep)}):"] + lines


def markdown_lines(sweep):
    head, cells = table_cells(sweep)
    return ["## Batch sweep", "",
            f"Forward GFLOP/s against the batch size; measured peak {_peak(sweep)} GFLOP/s; "
            f"points failing the check: {sweep['failed']}. Plot: `<run>-sweep.png`.", "",
            "| " + " | ".join(head) + " |", "|" + "|".join([":--"] * 3 + ["--:"] * (len(head) - 3)) + "|"
            ] + ["| " + " | ".join(c) + " |" for c in cells] + [""]


_STYLE = {"cnnops": "tab:blue", "torch": "tab:orange"}
_LINE = {"channels_last": "-", "nchw": "--"}


def save_sweep_chart(result, path):
    """GFLOP/s against batch size, one panel per layer, a line per library and layout, the
    measured peak dashed; writes path and returns it (None without a sweep or matplotlib)."""
    sweep = result.get("sweep")
    if not sweep or not _series(sweep):
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed: no sweep PNG written", stacklevel=2)
        return None
    layers = [layer["name"] for layer in sweep["layers"]]
    fig, axes = plt.subplots(1, len(layers), figsize=(5.5 * len(layers), 4.2), squeeze=False)
    series = _series(sweep)
    for ax, layer in zip(axes[0], layers):
        for (name, layout), by_batch in series.items():
            if name != layer:
                continue
            batches = sorted(by_batch)
            for lib, color in _STYLE.items():
                ax.plot(batches, [by_batch[b][lib]["gflops"] for b in batches], _LINE.get(layout, ":"),
                        color=color, marker="o", markersize=3, label=f"{lib} {layout}")
        if sweep.get("peak_gflops"):
            ax.axhline(sweep["peak_gflops"], color="black", linestyle=":", linewidth=1,
                       label=f"measured peak {sweep['peak_gflops']:.0f}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sweep["batches"], [str(b) for b in sweep["batches"]])
        ax.set_ylim(bottom=0)
        ax.set_title(layer.removeprefix("sweep_"), fontsize=9)
        ax.set_xlabel("batch size", fontsize=8)
        ax.set_ylabel("forward GFLOP/s", fontsize=8)
        ax.legend(fontsize=7)
    m = result["machine"]
    fig.suptitle(f"batch sweep, {m['device']} {result['settings']['dtype']}, "
                 f"{m.get('gpu') or m['cpu_model']}, {m['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
