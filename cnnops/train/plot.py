"""The training curves as a PNG: loss and accuracy (and mean IoU for segmentation) per
epoch, train and test, with the start of a fine-tuning phase marked."""
import pathlib


def plot_history(history, path, title=""):
    """Writes the curves of `history` (the list of per-epoch dicts the command keeps) to
    `path` (PNG) with matplotlib's Agg backend. Returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    panels = [("loss", "loss"), ("acc", "pixel accuracy" if "test_miou" in history[0]
                                 else "accuracy")]
    if "test_miou" in history[0]:
        panels.append(("miou", "mean IoU"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    finetune = next((h["epoch"] for h in history if h.get("phase") == "finetune"), None)
    for ax, (key, label) in zip(axes[0], panels):
        for split, style in (("train", "-o"), ("test", "-s")):
            ax.plot(epochs, [h[f"{split}_{key}"] for h in history], style, markersize=3,
                    label=split)
        if finetune is not None:
            ax.axvline(finetune - 0.5, color="grey", linestyle=":", label="fine-tune")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if key == "loss":
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
