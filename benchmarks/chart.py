"""The PNG chart: speedup of cnnops over torch per row, with the spread of the
per-repetition (paired) ratios as error bars. Skipped with a warning without matplotlib.
The per-layer rows (some hundred) are left out: the Markdown has their tables.
"""
import warnings

from .history import family_of


def save_speedup_chart(result, path):
    """Writes the chart to path and returns it, or returns None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        warnings.warn("matplotlib is not installed: no PNG chart written", stacklevel=2)
        return None
    rows = [r for r in result["rows"] if not r["error"] and family_of(r) != "layers"]
    if not rows:
        return None
    labels = [f"{r['case']} {r['layout']} {r['mode']}" for r in rows]
    speedups = [r["speedup"] for r in rows]
    paired = [r["speedup_paired"] for r in rows]
    err = [[max(s - p["q1"], 0) for s, p in zip(speedups, paired)],
           [max(p["q3"] - s, 0) for s, p in zip(speedups, paired)]]
    colors = [_color(r) for r in rows]

    fig, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.6))
    ys = range(len(rows))[::-1]
    ax.barh(list(ys), speedups, xerr=err, color=colors, capsize=2)
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("speedup = torch time / cnnops time (>1: cnnops faster)\n"
                  "bars: ratio of median times, whiskers: IQR of per-repetition ratios", fontsize=8)
    ax.legend(handles=[Patch(color=c, label=lab) for lab, c in _COLORS.items()],
              loc="lower right", fontsize=8)
    m = result["machine"]
    ax.set_title(f"cnnops vs torch, {m['device']} {result['settings']['dtype']}, "
                 f"{m.get('gpu') or m['cpu_model']}, {m['date']}", fontsize=9)
    for y, s, p, r in zip(ys, speedups, paired, rows):
        ax.text(max(s, p["q3"]), y, f"  {s:.2f}" + ("" if r["passed"] else " FAIL"),
                va="center", fontsize=7)
    ax.set_xlim(0, 1.12 * max([2.0] + [max(s, p["q3"]) for s, p in zip(speedups, paired)]))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


_COLORS = {"fwd": "tab:blue", "fwd+bwd": "tab:orange", "failed check": "tab:red"}


def _color(row):
    return _COLORS[row["mode"] if row["passed"] else "failed check"]
