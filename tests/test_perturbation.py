"""Batched perturbation engine: equality with captum's per-image Lime / KernelShap / Occlusion on the same
masks, closed forms on linear models, independence of batching and chunk size, callbacks, segmentations."""

from __future__ import annotations

import math

import pytest
import torch
from captum._utils.models.linear_model import SkLearnLinearRegression
from captum.attr import KernelShap, Lime, Occlusion
from captum.attr._core.lime import get_exp_kernel_similarity_function
from torch import nn

from xai_utils import attribution as A
from xai_utils.attribution import engine as P


class LinearModel(nn.Module):
    """logit_k = w_k . x + b_k: every perturbation method has a closed form on it."""

    def __init__(self, shape=(3, 8, 8), classes: int = 3):
        super().__init__()
        torch.manual_seed(3)
        self.head = nn.Linear(math.prod(shape), classes).double()

    def forward(self, x):
        return self.head(x.flatten(1))


class BlockRule(nn.Module):
    """Class 0 iff the mean of the top-left 4 x 4 block is above 0.5 (for Anchor)."""

    def forward(self, x):
        s = 20 * (x[:, :, :4, :4].mean(dim=(1, 2, 3)) - 0.5)
        return torch.stack([s, -s], dim=1)


def _mask_stream(masks):
    """captum perturb_func (generator) returning our masks row by row."""

    def gen(_inputs, **_kwargs):
        for row in masks:
            yield row.long().unsqueeze(0)

    return gen


def _mask_cosine_similarity(width):
    def sim(_orig, _pert, sample, **_kwargs):
        m = sample.double().flatten()
        d = 1 - m.sum() / (m.sum().sqrt() * math.sqrt(m.numel())) if m.sum() > 0 else torch.tensor(1.0)
        return math.exp(-(float(d) ** 2) / (2 * width**2))

    return sim


@pytest.fixture
def labels():
    return A.grid(8, 8, 4)  # 16 blocks of 2 x 2


def test_grid_and_windows():
    g = A.grid(8, 12, 4)
    assert g.shape == (8, 12) and g.unique().tolist() == list(range(16))
    assert (torch.bincount(g.flatten()) == 6).all()  # equal rectangles of 2 x 3
    w = A.sliding_windows((3, 32, 32), (3, 22, 22), (3, 11, 11))
    assert w.shape == (4, 3, 32, 32)  # ceil((32 - 22) / 11) + 1 = 2 per spatial dim
    assert w.flatten(1).any(0).all() and w[-1, :, 31, 31].all() and w[-1].sum() == 3 * 21 * 21
    p = A.patches(8, 8, 4, 2)
    assert p.shape == (9, 8, 8) and (p.sum(dim=(1, 2)) == 16).all()
    with pytest.raises(ValueError):
        A.grid(4, 4, 5)


def test_slic_labels(tiny_images):
    lab = A.slic(tiny_images, n_segments=6, compactness=10.0)
    assert lab.shape == (7, 8, 8) and lab.dtype == torch.long
    for one in lab:  # consecutive ids per image
        assert one.unique().tolist() == list(range(int(one.max()) + 1))
    a = A.lime(LinearModel(), tiny_images, features=lab, n_samples=30, chunk_size=64)
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("distance", ["mask_cosine", "cosine", "euclidean"])
def test_lime_equals_captum_on_same_masks(tiny_cnn, tiny_images, labels, distance):
    x = tiny_images[:3]
    masks = A.lime_masks(40, 16, 0.5, seed=1)
    width = 0.25 if distance != "euclidean" else 2.0
    ours = A.lime(
        tiny_cnn, x, 1, features=labels, masks=masks, distance=distance, kernel_width=width, chunk_size=7
    )
    sim = (
        _mask_cosine_similarity(width)
        if distance == "mask_cosine"
        else get_exp_kernel_similarity_function(distance, width)
    )
    ref = []
    for xi in x:
        lime = Lime(
            tiny_cnn,
            interpretable_model=SkLearnLinearRegression(),
            similarity_func=sim,
            perturb_func=_mask_stream(masks),
        )
        ref.append(
            lime.attribute(
                xi[None],
                target=1,
                feature_mask=labels[None, None],
                baselines=0.0,
                n_samples=len(masks),
                perturbations_per_eval=8,
            )
        )
    torch.testing.assert_close(ours, torch.cat(ref).double(), rtol=1e-3, atol=1e-5)


def test_kernel_shap_equals_captum_on_same_masks(tiny_cnn, tiny_images, labels):
    x = tiny_images[:3]
    masks = A.kernel_shap_masks(60, 16, seed=2)
    assert masks[0].all() and not masks[1].any()
    ours = A.kernel_shap(tiny_cnn, x, 2, features=labels, masks=masks, chunk_size=13)
    ref = []
    for xi in x:
        ks = KernelShap(tiny_cnn)
        ks.perturb_func = _mask_stream(masks)
        ref.append(
            ks.attribute(
                xi[None],
                target=2,
                feature_mask=labels[None, None],
                baselines=0.0,
                n_samples=len(masks),
                perturbations_per_eval=16,
            )
        )
    torch.testing.assert_close(ours, torch.cat(ref).double(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("window", "stride"),
    [((3, 2, 2), (3, 2, 2)), ((3, 4, 4), (3, 2, 2)), ((1, 4, 4), (1, 3, 3)), ((3, 5, 3), (3, 2, 3))],
)
def test_occlusion_equals_captum(tiny_cnn, tiny_images, window, stride):
    ours = A.occlusion(
        tiny_cnn, tiny_images, 0, sliding_window_shapes=window, strides=stride, baseline=0.3, chunk_size=10
    )
    ref = Occlusion(tiny_cnn).attribute(
        tiny_images, sliding_window_shapes=window, strides=stride, target=0, baselines=0.3
    )
    torch.testing.assert_close(ours, ref.double(), rtol=1e-5, atol=1e-6)  # captum accumulates in float32


def test_grid_occlusion_equals_window_occlusion(tiny_cnn, tiny_images, labels):
    ours = A.occlusion(tiny_cnn, tiny_images, features=labels, chunk_size=64)
    ref = Occlusion(tiny_cnn).attribute(
        tiny_images,
        sliding_window_shapes=(3, 2, 2),
        strides=(3, 2, 2),
        target=tiny_cnn(tiny_images).argmax(1),
    )
    torch.testing.assert_close(ours, ref.double(), rtol=1e-5, atol=1e-6)  # captum accumulates in float32


def test_closed_forms_on_linear_model(tiny_images, labels):
    """For f = w.x + b and zero baseline, the exact attribution of block j is sum_{p in j} w_p x_p."""
    model, x, t = LinearModel(), tiny_images, 1
    contrib = (model.head.weight[t].view(1, 3, 8, 8) * x).sum(1)  # (N, H, W)
    per_block = torch.zeros(len(x), 16, dtype=x.dtype).scatter_add_(
        1, labels.flatten().expand(len(x), -1), contrib.flatten(1)
    )
    expected = (
        per_block.gather(1, labels.flatten().expand(len(x), -1)).view(-1, 1, 8, 8).expand(-1, 3, -1, -1)
    )
    for name in ["occlusion", "lime", "kernel_shap"]:
        got = A.attribute(name, model, x, t, features=labels, chunk_size=32)
        torch.testing.assert_close(got, expected, msg=name)
    ridge = A.lime(model, x, t, features=labels, alpha=1.0, chunk_size=32)
    assert (
        ridge.flatten(1).norm(dim=1) < expected.flatten(1).norm(dim=1)
    ).all()  # ridge shrinks the coefficients


@pytest.mark.parametrize("name", ["occlusion", "lime", "kernel_shap", "anchor"])
def test_batching_and_chunk_size_do_not_change_results(name, tiny_cnn, tiny_images):
    f = A.METHODS[name]
    whole = f(tiny_cnn, tiny_images, chunk_size=5)
    parts = torch.cat([f(tiny_cnn, part, chunk_size=64) for part in tiny_images.split(3)])
    torch.testing.assert_close(whole, parts)
    torch.testing.assert_close(whole, f(tiny_cnn, tiny_images, chunk_size=17))


def test_seeded_masks_are_reproducible():
    assert torch.equal(A.lime_masks(50, 16, seed=4), A.lime_masks(50, 16, seed=4))
    assert not torch.equal(A.lime_masks(50, 16, seed=4), A.lime_masks(50, 16, seed=5))
    m = A.lime_masks(4000, 16, p=0.25)
    assert abs(m.double().mean().item() - 0.75) < 0.02
    ks = A.kernel_shap_masks(4000, 8, seed=0)[2:].sum(1)
    freq = torch.bincount(ks, minlength=8)[1:8].double() / len(ks)
    k = torch.arange(1, 8, dtype=torch.float64)
    expected = (7 / (k * (8 - k))) / (7 / (k * (8 - k))).sum()
    torch.testing.assert_close(freq, expected, atol=0.02, rtol=0)


def test_callback_sees_every_perturbation(tiny_cnn, tiny_images, labels):
    seen, rows = [], []

    def callback(batch, info):
        seen.append(batch.clone())
        rows.append(info["row"])

    x = tiny_images[:2]
    masks = A.lime_masks(10, 16, seed=0)
    out = A.evaluate_masks(tiny_cnn, x, masks, labels, 0, chunk_size=6, callback=callback)
    batches = torch.cat(seen)
    assert batches.shape == (20, 3, 8, 8) and torch.equal(torch.cat(rows), torch.arange(20))
    torch.testing.assert_close(tiny_cnn(batches)[:, 0].view(2, 10), out)
    keep = masks[3][labels]  # image 0, sample 3
    torch.testing.assert_close(batches[3], torch.where(keep, x[0], 0.0))


def test_engine_rows_and_baselines(tiny_cnn, tiny_images, labels):
    x = tiny_images[:3]
    base = torch.rand_like(x)
    m = A.lime_masks(5, 16, seed=0)
    full = A.evaluate_masks(tiny_cnn, x, m, labels, 0, baseline=base, chunk_size=4)
    rows = A.evaluate_masks(
        tiny_cnn,
        x,
        m.repeat(3, 1),
        labels,
        0,
        baseline=base,
        image_index=torch.arange(3).repeat_interleave(5),
        chunk_size=4,
    )
    torch.testing.assert_close(full.flatten(), rows)
    z = torch.where(m[2][labels], x[1], base[1])
    torch.testing.assert_close(full[1, 2], tiny_cnn(z[None])[0, 0])
    with pytest.raises(ValueError, match="features"):
        A.evaluate_masks(tiny_cnn, x, A.lime_masks(5, 9), labels, 0)
    with pytest.raises(ValueError, match="label map"):
        A.lime(tiny_cnn, x, features=A.patches(8, 8, 4, 2))


def test_anchor_finds_the_deciding_block(tiny_images):
    x = tiny_images.clone()
    x[:, :, :4, :4] = 0.9  # class 0 iff the top-left quadrant (features 0, 1, 4, 5 of the 4x4 grid) is kept
    model = BlockRule()
    a = A.anchor(model, x, features=A.grid(8, 8, 2), n_samples=64, chunk_size=64)
    assert a.shape == x.shape
    per_feature = a[:, 0, ::4, ::4]  # (N, 2, 2): the 2 x 2 grid
    assert (per_feature[:, 0, 0] > 0.3).all() and (per_feature.flatten(1)[:, 1:] == 0).all()
    order = A.anchor(model, x, features=A.grid(8, 8, 2), mark="order", chunk_size=64)
    assert (order[:, 0, 0, 0] == 1).all()


def test_best_chunk_size_is_cached(tiny_cnn, tiny_images):
    P._CHUNK_CACHE.pop(tiny_cnn, None)
    size = A.best_chunk_size(tiny_cnn, tiny_images, candidates=(4, 8, 16))
    assert size in (4, 8, 16)
    assert P._CHUNK_CACHE[tiny_cnn][("cpu", (3, 8, 8), torch.float64, False)] == size
    assert A.best_chunk_size(tiny_cnn, tiny_images, candidates=(32,)) == size  # from the cache
    # forward+backward is measured (and cached) separately, and leaves no gradient behind
    assert A.best_chunk_size(tiny_cnn, tiny_images, candidates=(32,), backward=True) == 32
    assert all(p.grad is None for p in tiny_cnn.parameters())


def test_best_chunk_size_is_fixed_under_deterministic_algorithms(tiny_cnn, tiny_images):
    """Notebooks run with deterministic algorithms: no timing may pick the chunk, so runs repeat."""
    P._CHUNK_CACHE.pop(tiny_cnn, None)
    torch.use_deterministic_algorithms(True)
    try:
        assert A.best_chunk_size(tiny_cnn, tiny_images, candidates=(4, 8, 16)) == P.DETERMINISTIC_CHUNK
    finally:
        torch.use_deterministic_algorithms(False)
    assert tiny_cnn not in P._CHUNK_CACHE  # nothing measured


def test_constant_output_gives_exactly_zero_weights():
    """An image whose perturbations all give the same output (a black image under zero masking) must
    get an all-zero map, bit for bit: on another CPU the weighted mean's rounding residue became noise
    maps, and scale-invariant aggregates of noise (cv, rmd, qcd) are arbitrary numbers."""
    gen = torch.Generator().manual_seed(0)
    X = (torch.rand(3, 50, 16, generator=gen) < 0.5).double()
    w = torch.rand(3, 50, generator=gen, dtype=torch.float64)
    y = torch.full((3, 50), 0.1 + 0.2)  # 0.30000000000000004: no weighted mean returns it exactly
    coef, intercept = P.weighted_least_squares(X, y, w)
    assert torch.equal(coef, torch.zeros_like(coef))
    torch.testing.assert_close(intercept, torch.full((3,), 0.1 + 0.2, dtype=torch.float64))
    y2 = y.clone()
    y2[:, 1] += 1.0  # any change of the output is still seen
    assert P.weighted_least_squares(X, y2, w)[0].abs().max() > 0.01
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    black = torch.zeros(2, 3, 8, 8)
    for name in ("lime", "kernel_shap"):
        maps = A.attribute(name, model, black, target=torch.tensor([0, 1]))
        assert torch.equal(maps, torch.zeros_like(maps)), name
