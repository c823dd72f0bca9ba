"""The chapter's verdicts, each decided on 95% bootstrap intervals over the Y images (ours)."""

from __future__ import annotations

from collections.abc import Sequence

from ... import metrics
from .perturb import METHODS
from .ratios import Hermitry, model_mean, pooled
from .tables import CUTOFF

#: An excess of H over the unperturbed null below this is "negligible": a method whose whole interval lies
#: below null + NEGLIGIBLE adds (almost) no hermits to those the unperturbed images already have.
NEGLIGIBLE = 0.05


def order(a: tuple[float, float], b: tuple[float, float]) -> int:
    """+1 when interval a lies wholly above b, -1 wholly below, 0 when they overlap."""
    return 1 if a[0] > b[1] else -1 if a[1] < b[0] else 0


def _verdict(orders: Sequence[int], what: str) -> dict[str, str]:
    if all(o == 1 for o in orders):
        return dict(verdict="holds", why="")
    if any(o == -1 for o in orders):
        return dict(verdict="does not hold", why="")
    return dict(verdict="not testable here", why=f"95% intervals of {what} overlap: more images are needed")


def claim_occlusion(h: Hermitry) -> dict[str, str]:
    """Every (run, class): occlusion's H interval wholly <= the 0.3 cutoff."""
    t = h.table[h.table["method"] == "occlusion"]
    ours = "; ".join(f"{r['run']} {r['class']}: {r['H']:.3f} [{r['low']:.3f}, {r['high']:.3f}]" for r in t.to_dict("records"))
    orders = [order((CUTOFF, CUTOFF), (r["low"], r["high"])) for r in t.to_dict("records")]
    return dict(ours=ours, **_verdict(orders, "occlusion's H and the 0.3 cutoff"))


def claim_all_ood(h: Hermitry, *, n_val: int, q: float, n_boot: int, seed: int) -> dict[str, str]:
    """Every method of every run: pooled H interval above the unperturbed null; a method whose interval lies
    below null + :data:`NEGLIGIBLE` makes it fail."""
    null = metrics.null_ratio(n_val, q)
    parts, orders = [], []
    for run in h.table["run"].unique():
        for m in [m for m in METHODS if m in set(h.table["method"])]:
            H, lo, hi = pooled(h, run, m, n_boot=n_boot, seed=seed)
            parts.append(f"{run} {METHODS[m]} {H:.3f} [{lo:.3f}, {hi:.3f}]")
            orders.append(1 if lo > null else -1 if hi < null + NEGLIGIBLE else 0)
    return dict(ours=f"null {null:.3f}; " + "; ".join(parts),
                **_verdict(orders, f"a method's H and the null {null:.2f}"))


def claim_lime_most(h: Hermitry, *, n_boot: int, seed: int) -> dict[str, str]:
    """Every run: LIME's pooled H interval above every other method's."""
    parts, orders = [], []
    for run in h.table["run"].unique():
        ivs = {m: pooled(h, run, m, n_boot=n_boot, seed=seed) for m in METHODS if m in set(h.table["method"])}
        parts.append(f"{run}: " + ", ".join(f"{METHODS[m]} {v[0]:.3f}" for m, v in ivs.items()))
        orders += [order(ivs["lime"][1:], v[1:]) for m, v in ivs.items() if m != "lime"]
    return dict(ours="; ".join(parts), **_verdict(orders, "LIME's and another method's H"))


def claim_between(h: Hermitry, *, n_boot: int, seed: int) -> dict[str, str]:
    """Every run: KernelSHAP's and Anchor's pooled H intervals above occlusion's and below LIME's."""
    parts, orders = [], []
    for run in h.table["run"].unique():
        ivs = {m: pooled(h, run, m, n_boot=n_boot, seed=seed)[1:] for m in METHODS if m in set(h.table["method"])}
        for m in ("kernel_shap", "anchor"):
            if m in ivs:
                orders += [order(ivs[m], ivs["occlusion"]), order(ivs["lime"], ivs[m])]
                parts.append(f"{run} {METHODS[m]} [{ivs[m][0]:.3f}, {ivs[m][1]:.3f}]")
    return dict(ours="; ".join(parts), **_verdict(orders, "KernelSHAP's / Anchor's H and occlusion's or LIME's"))


#: The paper's models, by the names of the ``full`` preset's runs, MnasNet (the lowest ratios) first.
PAPER_ARCHS = ("mnasnet1_0", "densenet121", "resnet50")


def claim_architecture(h: Hermitry, *, n_boot: int, seed: int) -> dict[str, str]:
    """MnasNet1.0's model mean below DenseNet121's and ResNet50's (intervals); testable only where the runs
    are the paper's three torchvision models (the ``full`` preset)."""
    runs = list(h.table["run"].unique())
    if not set(PAPER_ARCHS) <= set(runs):
        return dict(ours=", ".join(runs), verdict="not testable here",
                    why="needs the paper's three ImageNet models (the full preset); this preset has other architectures")
    ivs = {a: model_mean(h, a, n_boot=n_boot, seed=seed) for a in PAPER_ARCHS}
    return dict(ours="; ".join(f"{a} {v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" for a, v in ivs.items()),
                **_verdict([order(ivs[a][1:], ivs[PAPER_ARCHS[0]][1:]) for a in PAPER_ARCHS[1:]],
                           "MnasNet1.0's and another model's mean H"))
