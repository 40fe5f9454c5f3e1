"""Geometry of the dashboard's inline SVG charts (no JavaScript, no build step).

Functions return plain numbers; templates draw them, so user text (usernames) stays
auto-escaped by the template engine.
"""

from __future__ import annotations

from catalog.factors import FACTORS_BY_KEY

BAR_W = 360  # pixels for the value range
LABEL_W = 250
ROW_H = 26


def _scale(lo: float, hi: float, width: float):
    span = hi - lo or 1.0
    return lambda v: (v - lo) / span * width


def factor_bars(rows: list[dict]) -> dict:
    """Per-factor bars: Fleiss' kappa (with its bootstrap CI) and Krippendorff's alpha."""
    values = [v for r in rows for v in (r["fleiss_kappa"], r["alpha"], *(r["kappa_ci"] or [])) if v is not None]
    lo = min([0.0, *values])
    hi = 1.0
    x = _scale(lo, hi, BAR_W)
    zero = LABEL_W + x(0.0)
    out = []
    for i, r in enumerate(rows):
        y = 30 + i * ROW_H
        item = {
            "label": FACTORS_BY_KEY[r["factor"]].wording,
            "key": r["factor"],
            "y": y,
            "ty": y + 13,
            "n": r["n_items"],
            "kappa": r["fleiss_kappa"],
            "alpha": r["alpha"],
            "raw": r["raw_agreement"],
        }
        for name, v, dy, h in (("kbar", r["fleiss_kappa"], 2, 10), ("abar", r["alpha"], 13, 8)):
            if v is None:
                item[name] = None
                continue
            end = LABEL_W + x(v)
            item[name] = {"x": min(zero, end), "w": max(abs(end - zero), 1.0), "y": y + dy, "h": h, "neg": v < 0}
        ci = r["kappa_ci"]
        item["ci"] = (
            {"x1": LABEL_W + x(ci[0]), "x2": LABEL_W + x(ci[1]), "y": y + 7}
            if ci and ci[0] is not None and ci[1] is not None
            else None
        )
        item["vx"] = LABEL_W + BAR_W + 12
        out.append(item)
    ticks = [{"x": LABEL_W + x(t), "label": f"{t:g}"} for t in (-0.5, 0.0, 0.25, 0.5, 0.75, 1.0) if t >= lo]
    return {
        "rows": out,
        "ticks": ticks,
        "zero": zero,
        "height": 40 + len(rows) * ROW_H,
        "width": LABEL_W + BAR_W + 110,
        "axis_y": 30 + len(rows) * ROW_H,
    }


def agreement_speed_scatter(annotators: list[dict]) -> dict:
    """Annotators as points: median seconds per item (x) against Cohen's kappa vs consensus (y)."""
    W, H, L, B, T = 520, 300, 56, 40, 24
    pts = [a for a in annotators if a["median_seconds"] is not None and a["kappa_vs_consensus"] is not None]
    xmax = max([a["median_seconds"] for a in pts] + [1.0]) * 1.15
    ylo = min([a["kappa_vs_consensus"] for a in pts] + [0.0])
    x = _scale(0.0, xmax, W - L - 90)  # room for the last point's label
    y = _scale(ylo, 1.0, H - B - T)
    points = [
        {
            "cx": L + x(a["median_seconds"]),
            "cy": H - B - y(a["kappa_vs_consensus"]),
            "name": a["username"],
            "kappa": a["kappa_vs_consensus"],
            "sec": a["median_seconds"],
        }
        for a in pts
    ]
    step = xmax / 4
    xticks = [{"x": L + x(i * step), "label": f"{i * step:.0f}"} for i in range(5)]
    yticks = [{"y": H - B - y(v), "label": f"{v:g}"} for v in (0.0, 0.25, 0.5, 0.75, 1.0) if v >= ylo]
    return {
        "points": points,
        "width": W,
        "height": H,
        "left": L,
        "bottom": H - B,
        "top": T,
        "right": W - 20,
        "xticks": xticks,
        "yticks": yticks,
        "missing": len(annotators) - len(pts),
    }


def meta_table(by_meta: list[dict]) -> list[dict]:
    """Rows of the meta-label breakdown: each factor's kappa with a shade class for the cell."""

    def shade(v):
        if v is None:
            return "na"
        return "hi" if v >= 0.6 else "mid" if v >= 0.4 else "lo"

    return [
        {
            "meta_label": m["meta_label"],
            "n": m["n_items"],
            "cells": [{"v": r["fleiss_kappa"], "shade": shade(r["fleiss_kappa"])} for r in m["factors"]],
        }
        for m in by_meta
    ]


def drift_rows(annotators: list[dict]) -> list[dict]:
    """Per annotator and factor: the drift, shaded by size (a change of 0.2 in tick rate or more stands out)."""

    def shade(v):
        if v is None:
            return "na"
        return "lo" if abs(v) >= 0.2 else "mid" if abs(v) >= 0.1 else "hi"

    return [
        {"username": a["username"], "cells": [{"key": k, "v": v, "shade": shade(v)} for k, v in a["drift"].items()]}
        for a in annotators
    ]
