"""Figures of a curation run, drawn with matplotlib's Agg backend to PNG and SVG. No Django imports.

Each function takes the JSON of statistics.compute_all and returns a matplotlib Figure;
`render_all` returns (key, title, png bytes, svg bytes) for every figure.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on workers; must precede pyplot
# Keep SVG text as <text> (not glyph paths): half the rendering time, smaller and searchable files.
matplotlib.rcParams["svg.fonttype"] = "none"

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from catalog.factors import FACTOR_KEYS, META_LABELS  # noqa: E402

_SPLIT_COLOURS = {"train": "#8fb3e8", "val": "#2857c5", "all": "#16202c"}


def _splits(counts: dict) -> list[str]:
    named = [s for s in counts if s != "all"]
    return named or ["all"]


def factor_counts_figure(stats: dict):
    """Fig. 2 / Table 2: share of images per factor, all selected vs top factor, per split."""
    counts = stats["factor_counts"]
    splits = _splits(counts)
    order = sorted(FACTOR_KEYS, key=lambda k: -counts["all"]["selected_share"][k])
    # Fixed margins instead of a layout engine: constrained_layout re-solves the layout on every
    # save (PNG and SVG) and was most of the rendering time.
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=False)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.93, bottom=0.27, wspace=0.18)
    x = np.arange(len(order))
    width = 0.8 / len(splits)
    for ax, what, title in ((axes[0], "selected_share", "all selected factors"), (axes[1], "top_share", "top factor")):
        for i, s in enumerate(splits):
            ax.bar(
                x + i * width,
                [counts[s][what][k] for k in order],
                width,
                label=f"{s} (n={counts[s]['images']})",
                color=_SPLIT_COLOURS.get(s, None),
            )
        ax.set_xticks(x + width * (len(splits) - 1) / 2, [k.replace("_", " ") for k in order], rotation=60, ha="right")
        ax.set_ylabel("share of images")
        ax.set_title(title)
        ax.legend(fontsize=8)
    return fig


def factors_per_image_figure(stats: dict):
    """Fig. 7: how many factors annotators selected per image."""
    hist = stats["factors_per_image"]
    splits = [s for s in hist if s != "all"] or ["all"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    fig.subplots_adjust(left=0.12, right=0.98, top=0.96, bottom=0.13)
    n_max = max(int(k) for s in splits for k in hist[s]) + 1
    width = 0.8 / len(splits)
    for i, s in enumerate(splits):
        total = sum(hist[s].values()) or 1
        ys = [hist[s].get(str(k), 0) / total for k in range(n_max)]
        ax.bar(np.arange(n_max) + i * width, ys, width, label=s, color=_SPLIT_COLOURS.get(s, None))
    ax.set_xticks(np.arange(n_max) + width * (len(splits) - 1) / 2, [str(k) for k in range(n_max)])
    ax.set_xlabel("factors selected per image")
    ax.set_ylabel("share of images")
    ax.legend()
    return fig


def _heatmap(ax, matrix: np.ndarray, rows: list[str], cols: list[str], title: str) -> None:
    lim = np.nanmax(np.abs(matrix)) if np.isfinite(matrix).any() else 1.0
    im = ax.imshow(matrix, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(cols)), [c.replace("_", " ") for c in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [r.replace("_", " ") for r in rows], fontsize=8)
    ax.set_title(title, fontsize=10)
    plt.colorbar(im, ax=ax, shrink=0.8, pad=0.02, label="Spearman rho (significant only)")


def spearman_figure(stats: dict):
    """Fig. 8: significant Spearman correlations, factor x factor and factor x meta-label (blank = n.s.)."""
    sp = stats["spearman"]
    keys = list(FACTOR_KEYS)
    ff = np.full((len(keys), len(keys)), np.nan)
    for c in sp["factor_factor"]:
        i, j = keys.index(c["a"]), keys.index(c["b"])
        ff[i, j] = ff[j, i] = c["rho"]
    fm = np.full((len(keys), len(META_LABELS)), np.nan)
    for c in sp["factor_meta"]:
        fm[keys.index(c["factor"]), META_LABELS.index(c["meta_label"])] = c["rho"]
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.4))
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.22, wspace=0.25)
    _heatmap(axes[0], ff, keys, keys, "factor x factor")
    _heatmap(axes[1], fm, keys, list(META_LABELS), "factor x meta-label")
    fig.suptitle(f"Spearman correlations, Bonferroni-corrected p < {sp['alpha']}")
    return fig


FIGURES = (
    ("factor_counts", "Factor counts per split: all selected and top factor (paper Fig. 2)", factor_counts_figure),
    ("factors_per_image", "Factors selected per image (paper Fig. 7)", factors_per_image_figure),
    ("spearman", "Significant Spearman correlations (paper Fig. 8)", spearman_figure),
)


def render_all(stats: dict) -> list[tuple[str, str, bytes, bytes]]:
    out = []
    for key, title, make in FIGURES:
        fig = make(stats)
        try:
            png, svg = io.BytesIO(), io.BytesIO()
            fig.savefig(png, format="png", dpi=110)
            fig.savefig(svg, format="svg")
        finally:
            plt.close(fig)
        out.append((key, title, png.getvalue(), svg.getvalue()))
    return out
