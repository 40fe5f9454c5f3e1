"""Figures of an evaluation (matplotlib Agg -> PNG + SVG). No Django imports.

- error_ratios: the model's error ratio per factor with 95 % intervals, bars faded where the
  factor's error rate does not differ from the rest after Holm; the zoo groups' mean error ratios
  beside it (the paper's Figure 1b);
- accuracy_vs_overall: per factor, accuracy against overall accuracy, the zoo and this model,
  identity line (Figure 4);
- metalabels: the 3 most susceptible and 3 most robust factors of the worst meta-labels and
  overall (Figure 5);
- reliability: reliability diagram (where probabilities exist);
- compare_figure: two models' per-factor accuracies with intervals.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from catalog.factors import FACTOR_KEYS, META_LABELS  # noqa: E402

GROUP_COLOURS = ["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd", "#8c8c8c", "#e377c2"]


def _save(fig) -> tuple[bytes, bytes]:
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    fig.savefig(svg, format="svg")
    plt.close(fig)
    return png.getvalue(), svg.getvalue()


def error_ratio_figure(block: dict, zoo: dict, name: str):
    f = block["factors"]
    keys = sorted((k for k in FACTOR_KEYS if f[k]["error_ratio"] is not None), key=lambda k: -f[k]["error_ratio"])
    fig, ax = plt.subplots(figsize=(11, 4.6))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.9, bottom=0.27)
    x = np.arange(len(keys))
    er = np.array([f[k]["error_ratio"] for k in keys])
    lo = np.array([f[k]["error_ratio_ci"][0] or 0 for k in keys])
    hi = np.array([f[k]["error_ratio_ci"][1] or 0 for k in keys])
    alphas = [1.0 if f[k]["significant"] and not f[k]["few_images"] else 0.3 for k in keys]
    for i in range(len(keys)):
        ax.bar(x[i], er[i], color="#c44e52", alpha=alphas[i], width=0.6, label=name if i == 0 else None)
    ax.errorbar(x, er, yerr=[np.maximum(er - lo, 0), np.maximum(hi - er, 0)], fmt="none", ecolor="#333", lw=1)
    for gi, (group, g) in enumerate(sorted(zoo.get("groups", {}).items())):
        ys = [g["mean_error_ratio"].get(k) for k in keys]
        ax.scatter(x + 0.33, [np.nan if y is None else y for y in ys], s=14, marker="D",
                   color=GROUP_COLOURS[gi % len(GROUP_COLOURS)], label=f"{group} (n={g['n']}, mean)", zorder=3)  # fmt: skip
    ax.axhline(1, color="#555", lw=0.8, ls="--")
    ax.set_xticks(x, [k.replace("_", " ") for k in keys], rotation=45, ha="right")
    ax.set_ylabel("error ratio (1 - acc_f) / (1 - acc)")
    ax.set_title(
        f"{name}: error ratio per factor (95 % interval; faded = not different from the rest after Holm, or < 30 images)"
    )
    ax.legend(fontsize=7, ncol=3, loc="upper right")
    return fig


def accuracy_scatter_figure(block: dict, zoo: dict, name: str):
    fig, axes = plt.subplots(4, 4, figsize=(12, 11), sharex=True, sharey=True)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.94, bottom=0.05, hspace=0.3, wspace=0.1)
    mine_x = block["overall"]["accuracy"]
    for j, (ax, k) in enumerate(zip(axes.ravel(), FACTOR_KEYS, strict=True)):
        for gi, (group, g) in enumerate(sorted(zoo.get("groups", {}).items())):
            acc = np.asarray(g["accuracies"], dtype=float)
            if acc.size:
                ax.scatter(g["average"], acc[:, j], s=3, alpha=0.4, color=GROUP_COLOURS[gi % len(GROUP_COLOURS)],
                           label=group if j == 0 else None)  # fmt: skip
        y = block["factors"][k]["accuracy"]
        if mine_x is not None and y is not None:
            ax.scatter([mine_x], [y], s=60, marker="*", color="black", zorder=4, label=name if j == 0 else None)
        ax.plot([0, 1], [0, 1], color="#888", lw=0.8, ls="--")
        ax.set_title(k.replace("_", " "), fontsize=9)
        ax.set_xlim(0.3, 1)
        ax.set_ylim(0, 1)
    fig.suptitle("Per-factor accuracy against overall accuracy (zoo and this model; dashed = identity)")
    fig.legend(loc="upper right", fontsize=7, markerscale=3)
    return fig


def metalabel_figure(report: dict, name: str):
    ml = report.get("metalabel_factor")
    if not ml:
        return None
    acc = [a if a is not None else 1.0 for a in ml["accuracy"]]
    worst = [META_LABELS[i] for i in np.argsort(acc)[:3] if ml["images"][i] > 0]
    prim = report["kinds"][report["primary"]]
    overall = sorted(
        (
            (k, v["error_ratio"])
            for k, v in prim["factors"].items()
            if v["error_ratio"] is not None and not v["few_images"]
        ),
        key=lambda t: t[1],
    )
    panels = [("overall", overall[::-1][:3], overall[:3])]
    for m in worst:
        t = ml["table4"][m]
        panels.append((m, t["susceptible"][:3], t["robust"][:3]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    fig.subplots_adjust(left=0.1, right=0.99, top=0.82, bottom=0.12, wspace=0.9)
    for ax, (title, sus, rob) in zip(np.atleast_1d(axes), panels, strict=True):
        items = list(sus) + list(rob)[::-1]
        ax.barh(range(len(items)), [v for _, v in items], color=["#c44e52"] * len(sus) + ["#4c72b0"] * len(rob))
        ax.set_yticks(range(len(items)), [k.replace("_", " ") for k, _ in items], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1, color="#555", lw=0.8, ls="--")
        ax.set_title(title.replace("_", " "), fontsize=9)
    fig.suptitle(f"{name}: 3 most susceptible (red) and 3 most robust (blue) factors, worst meta-labels", fontsize=10)
    return fig


def reliability_figure(report: dict, name: str):
    cal = report.get("calibration")
    if not cal:
        return None
    r = cal["reliability"]
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    fig.subplots_adjust(left=0.14, right=0.97, top=0.9, bottom=0.12)
    conf = np.array([np.nan if c is None else c for c in r["confidence"]], dtype=float)
    acc = np.array([np.nan if a is None else a for a in r["accuracy"]], dtype=float)
    centers = (np.arange(len(conf)) + 0.5) / len(conf)
    ax.bar(
        centers, np.nan_to_num(acc), width=1 / len(conf), edgecolor="#333", color="#4c72b0", alpha=0.8, label="accuracy"
    )
    ax.plot(conf, acc, "o", color="#c44e52", ms=3, label="mean confidence")
    ax.plot([0, 1], [0, 1], "--", color="#888")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{name}: reliability (ECE {cal['ece']['overall']:.3f})", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def compare_figure(cmp: dict, name_a: str, name_b: str):
    rows = cmp["factors"]
    keys = ["overall", *FACTOR_KEYS]
    fig, ax = plt.subplots(figsize=(11, 4.4))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.9, bottom=0.27)
    x = np.arange(len(keys))
    d = np.array([np.nan if rows[k]["difference"] is None else rows[k]["difference"] for k in keys])
    lo = np.array([np.nan if rows[k]["ci"][0] is None else rows[k]["ci"][0] for k in keys])
    hi = np.array([np.nan if rows[k]["ci"][1] is None else rows[k]["ci"][1] for k in keys])
    colours = ["#c44e52" if rows[k]["significant"] else "#bbbbbb" for k in keys]
    ax.bar(x, d, color=colours)
    ax.errorbar(x, d, yerr=[d - lo, hi - d], fmt="none", ecolor="#333", lw=1)
    ax.axhline(0, color="#555", lw=0.8)
    ax.set_xticks(x, [k.replace("_", " ") for k in keys], rotation=45, ha="right")
    ax.set_ylabel("accuracy difference, A - B")
    ax.set_xlabel(f"A = {name_a}, B = {name_b}", fontsize=8)
    ax.set_title(
        "Paired accuracy difference per factor (95 % interval; red = McNemar significant after Holm)", fontsize=9
    )
    return fig


def render_all(report: dict, primary: str, zoo: dict, *, name: str) -> list[tuple[str, str, bytes, bytes]]:
    block = report["kinds"][primary]
    out = []
    for key, title, fig in (
        ("error_ratios", "Error ratio per factor, with the zoo's groups", error_ratio_figure(block, zoo, name)),
        (
            "accuracy_vs_overall",
            "Per-factor accuracy against overall accuracy",
            accuracy_scatter_figure(block, zoo, name),
        ),
        ("metalabels", "Most susceptible and robust factors per meta-label", metalabel_figure(report, name)),
        ("reliability", "Reliability diagram", reliability_figure(report, name)),
    ):
        if fig is not None:
            png, svg = _save(fig)
            out.append((key, title, png, svg))
    return out


def render_one(fig) -> tuple[bytes, bytes]:
    return _save(fig)
