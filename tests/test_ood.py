"""Tests of xai_utils.ood: registry properties, closed forms, GAIA/S&I identities, aggregates, SalAgg+MLS."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from xai_utils import ood
from xai_utils.metrics import auroc


def _kwargs(name, model, x):
    return {"fit": ood.FITTED[name](model, x)} if name in ood.FITTED else {}


@pytest.fixture(params=["tiny_cnn", "tiny_resnet"])
def model(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("name", sorted(ood.SCORES))
def test_score_is_per_sample_batch_invariant_and_pure(name, model, tiny_images):
    kw = _kwargs(name, model, tiny_images)
    before = tiny_images.clone()
    whole = ood.score(name, model, tiny_images, **kw)
    assert whole.shape == (len(tiny_images),)
    assert whole.dtype == tiny_images.dtype
    assert torch.isfinite(whole).all()
    assert not whole.requires_grad
    torch.testing.assert_close(
        whole, torch.cat([ood.score(name, model, c, **kw) for c in tiny_images.split(3)])
    )
    assert torch.equal(tiny_images, before) and not tiny_images.requires_grad
    assert all(not m._forward_hooks for m in model.modules()), "hooks must be removed"


def test_every_score_has_one_display_name():
    assert set(ood.LABELS) == set(ood.SCORES)
    assert len(set(ood.LABELS.values())) == len(ood.LABELS)


def test_unknown_names_list_the_known_ones(tiny_cnn, tiny_images):
    with pytest.raises(ValueError, match="known:.*energy"):
        ood.score("nope", tiny_cnn, tiny_images)
    with pytest.raises(ValueError, match="known:.*norm"):
        ood.aggregate("nope", tiny_images)


def test_bad_images_raise(tiny_cnn, tiny_images):
    with pytest.raises(ValueError, match="N, C, H, W"):
        ood.msp(tiny_cnn, tiny_images[0])
    bad = tiny_images.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ood.energy(tiny_cnn, bad)


@pytest.mark.parametrize("name", [*sorted(ood.SCORES), "saliency_aggregates"])
def test_images_are_scanned_once_per_call(name, tiny_cnn, tiny_images, monkeypatch):
    """One full NaN/inf scan of x per public call (issue 14), not one per helper it calls."""
    kw = _kwargs(name, tiny_cnn, tiny_images)
    scans, isfinite = [], torch.isfinite
    whole = (tiny_images.data_ptr(), tiny_images.shape)
    monkeypatch.setattr(torch, "isfinite",
                        lambda t, *a, **k: scans.append((t.data_ptr(), t.shape) == whole) or isfinite(t, *a, **k))
    if name == "saliency_aggregates":
        ood.saliency_aggregates(tiny_cnn, tiny_images, {"s": ("saliency", {})}, ["mean"],
                                batch_size=len(tiny_images), chunk_size=None)
    else:
        ood.score(name, tiny_cnn, tiny_images, **kw)
    assert sum(scans) == 1


def test_logit_scores_closed_forms(tiny_resnet, tiny_images):
    with torch.no_grad():
        logits = tiny_resnet(tiny_images)
    torch.testing.assert_close(ood.energy(tiny_resnet, tiny_images), torch.logsumexp(logits, 1))
    torch.testing.assert_close(
        ood.energy(tiny_resnet, tiny_images, temperature=2.0), 2.0 * torch.logsumexp(logits / 2.0, 1)
    )
    torch.testing.assert_close(ood.max_logit(tiny_resnet, tiny_images), logits.max(1).values)
    torch.testing.assert_close(ood.msp(tiny_resnet, tiny_images), F.softmax(logits, 1).max(1).values)


def test_odin_step_and_input_untouched(tiny_cnn, tiny_images):
    x = tiny_images.clone()
    with torch.no_grad():
        plain = F.softmax(tiny_cnn(x) / 1000.0, 1).amax(1)
    torch.testing.assert_close(ood.odin(tiny_cnn, x, epsilon=0.0), plain)
    out = ood.odin(tiny_cnn, x)
    assert torch.equal(x, tiny_images) and x.grad is None and not x.requires_grad
    assert (out >= plain - 1e-12).all(), "the step lowers the predicted class's loss"
    # a per-channel std of s divides the step: same as epsilon / s
    torch.testing.assert_close(
        ood.odin(tiny_cnn, x, epsilon=0.01, input_std=(2.0, 2.0, 2.0)), ood.odin(tiny_cnn, x, epsilon=0.005)
    )
    with pytest.raises(ValueError, match="input_std"):
        ood.odin(tiny_cnn, x, input_std=(1.0, 0.0, 1.0))


def test_gradnorm_batched_equals_naive_per_sample_loop(tiny_resnet, tiny_images):
    model = tiny_resnet
    ref = []
    for xi in tiny_images:  # reference: OpenOOD-style loop with autograd on the head weight
        head = torch.nn.Linear(model.head.in_features, model.head.out_features).double()
        head.load_state_dict(model.head.state_dict())
        logits = head(model.features(xi[None]).detach())
        loss = -(F.log_softmax(logits, 1) / logits.shape[1]).sum()
        loss.backward()
        ref.append(head.weight.grad.abs().sum())
    torch.testing.assert_close(ood.gradnorm(model, tiny_images), torch.stack(ref))


def test_react_threshold_and_limits(tiny_cnn, tiny_images):
    fit = ood.fit_react(tiny_cnn, tiny_images, percentile=90)
    with torch.no_grad():
        feats = tiny_cnn.features(tiny_images)
    assert fit.threshold == pytest.approx(np.percentile(feats.numpy(), 90))
    assert ood.fit_react(tiny_cnn, list(tiny_images.split(2)), percentile=90) == fit
    top = ood.fit_react(tiny_cnn, tiny_images, percentile=100)  # clips nothing -> plain energy
    torch.testing.assert_close(ood.react(tiny_cnn, tiny_images, fit=top), ood.energy(tiny_cnn, tiny_images))
    with torch.no_grad():
        clipped = torch.logsumexp(tiny_cnn.head(feats.clamp(max=fit.threshold)), 1)
    torch.testing.assert_close(ood.react(tiny_cnn, tiny_images, fit=fit), clipped)
    with pytest.raises(ValueError, match="fit_react"):
        ood.react(tiny_cnn, tiny_images)


def test_rankfeat_matches_numpy_svd_reference(tiny_cnn, tiny_images):
    with torch.no_grad():
        fmap = tiny_cnn.body(tiny_images).numpy()
    removed = []
    for m in fmap.reshape(len(fmap), fmap.shape[1], -1):
        u, s, vh = np.linalg.svd(m, full_matrices=False)
        removed.append(m - s[0] * np.outer(u[:, 0], vh[0]))
    pooled = torch.from_numpy(np.stack(removed).mean(-1))
    with torch.no_grad():
        ref = torch.logsumexp(tiny_cnn.head(pooled), 1)
    torch.testing.assert_close(ood.rankfeat(tiny_cnn, tiny_images), ref)


def test_gaia_z_closed_form_on_the_last_map(tiny_cnn, tiny_images):
    # d max-logit / d(post-ReLU map before average pooling) = W[y, k] / HW everywhere: every channel is dense
    out = ood.gaia_z(tiny_cnn, tiny_images, layers=[tiny_cnn.body])
    torch.testing.assert_close(out, torch.full((7,), -1.0, dtype=out.dtype))


def test_gaia_z_density_matches_relu_mask(tiny_cnn, tiny_images):
    # gradient w.r.t. the last conv's output is non-zero exactly where its ReLU is active
    conv = tiny_cnn.body[2]
    with torch.no_grad():
        pre = tiny_cnn.body[:3](tiny_images)
    dens = (pre > 0).double().flatten(2).mean(-1)
    torch.testing.assert_close(ood.gaia_z(tiny_cnn, tiny_images, layers=[conv]), -dens.square().mean(1))


def _direct_s_and_i(model, x, splits, *, steps, eta):
    """S&I-Z transcribed per sample from the authors' cal_zero (head/remain split, product, binarise)."""
    scores = []
    for xi in x.split(1):
        dens = []
        for k in splits:  # split after body[k]
            head, remain = model.body[: k + 1], lambda h, k=k: model.head(model.pool(model.body[k + 1 :](h)).flatten(1))
            h = head(xi).detach()
            target, acc = None, None
            for _ in range(steps):
                h = h.detach().requires_grad_()
                y = remain(h)
                gd = torch.autograd.grad(y.max(1).values.sum(), h, retain_graph=True)[0]
                target = y.argmax(-1) if target is None else target
                grad = torch.autograd.grad(F.cross_entropy(y, target), h)[0]
                h = h + eta * grad.sign()
                acc = gd if acc is None else acc * gd
            dens.append((acc != 0).double().mean((-1, -2)))
        scores.append(-torch.cat(dens, 1).square().mean(1))
    return torch.cat(scores)


def test_s_and_i_equals_a_direct_per_sample_implementation(tiny_cnn, tiny_images):
    layers = [tiny_cnn.body[0], tiny_cnn.body[2]]
    for eta in (0.05, 1.0):
        ours = ood.s_and_i(tiny_cnn, tiny_images, layers=layers, steps=2, step_size=eta)
        torch.testing.assert_close(ours, _direct_s_and_i(tiny_cnn, tiny_images, [0, 2], steps=2, eta=eta))


@pytest.mark.parametrize("variant", ["z", "a"])
def test_s_and_i_reduces_to_gaia(variant, tiny_resnet, tiny_images):
    base = ood.gaia_z if variant == "z" else ood.gaia_a
    ref = base(tiny_resnet, tiny_images)
    torch.testing.assert_close(ood.s_and_i(tiny_resnet, tiny_images, variant=variant, steps=1), ref)
    # no movement: every iterate is the input, the product has the same non-zero set
    if variant == "z":
        torch.testing.assert_close(ood.s_and_i(tiny_resnet, tiny_images, steps=3, step_size=0.0), ref)
    moved = ood.s_and_i(tiny_resnet, tiny_images, variant=variant, steps=3, step_size=0.5)
    assert not torch.allclose(moved, ref), "a real attack changes the score"


def test_the_product_only_shrinks_the_non_zero_set(tiny_resnet, tiny_images):
    gaia = ood.gaia_z_densities(tiny_resnet, tiny_images)
    si = ood.s_and_i_densities(tiny_resnet, tiny_images, steps=3, step_size=0.3)
    assert all(bool((s <= g).all()) for s, g in zip(si, gaia, strict=True))
    assert any(bool((s < g).any()) for s, g in zip(si, gaia, strict=True))  # and a large step does shrink it
    eq11 = ood.s_and_i_densities(tiny_resnet, tiny_images, steps=1, accumulate="eq11", gradient="ce")
    assert [d.shape for d in eq11] == [d.shape for d in gaia]
    assert all(bool(((d >= 0) & (d <= 1)).all()) for d in eq11)


def test_the_attack_ascends_the_cross_entropy(tiny_cnn, tiny_images):
    layer = tiny_cnn.body[0]
    with torch.no_grad():
        target = tiny_cnn(tiny_images).argmax(1)
        h0 = layer(tiny_images)

    def ce(h):
        logits = tiny_cnn.head(tiny_cnn.pool(tiny_cnn.body[1:](h)).flatten(1))
        return F.cross_entropy(logits, target, reduction="none")

    (g0,) = ood.split_attack(tiny_cnn, tiny_images, layer, target, steps=1, step_size=0.0,
                             objective=lambda logits, outs: logits.sum(), gradient="ce")
    h = h0.clone().requires_grad_()
    torch.testing.assert_close(g0, torch.autograd.grad(ce(h).sum(), h)[0])  # the CE gradient at h_0
    with torch.no_grad():
        assert (ce(h0 + 1e-3 * g0.sign()) > ce(h0)).all()


def _authors_cal_grad_value(model, x, inner, last):
    """The authors' ``cal_grad_value`` transcribed: gradient hooks on ``inner`` and ``last``; ``o`` from the
    log-softmax gradient at ``last``, the inner gradients of the sum of the pooled ``last`` output."""
    layers, grads, outs = [*inner, last], {}, {}

    def keep(i):
        def hook(module, inputs, out):
            outs[i] = out
            out.register_hook(lambda g: grads.__setitem__(i, g))
        return hook

    handles = [m.register_forward_hook(keep(i)) for i, m in enumerate(layers)]
    try:
        y = model(x.clone().requires_grad_())
        F.log_softmax(y, -1).sum().backward(retain_graph=True)
        output_component = grads[len(inner)].mean((-1, -2)).abs().mean(1).sqrt().unsqueeze(1)
        outs[len(inner)].mean((-1, -2)).sum().backward()  # their before_head_data: the pooled feature
        inner_component = torch.cat([grads[i].mean((-1, -2)) for i in range(len(inner))], 1).abs()
        return (inner_component / output_component).pow(2).mean(1)
    finally:
        for h in handles:
            h.remove()


def test_gaia_a_matches_a_transcription_of_the_authors_cal_grad_value(tiny_resnet, tiny_images):
    authors = _authors_cal_grad_value(tiny_resnet, tiny_images, ood.gaia_layers(tiny_resnet), tiny_resnet.cam_layer)
    torch.testing.assert_close(ood.gaia_a(tiny_resnet, tiny_images), -authors)


def test_bit_scores_use_the_authors_layers():
    """BiT (tiny depth): GAIA-A on block4's GroupNorms over ``before_head`` (their hook.py); S&I's split points add
    ``before_head`` (their 10 splits), and with T = 1 S&I equals GAIA-Z on them."""
    from xai_utils.models.bit import BiTResNetV2

    torch.manual_seed(0)
    bit = BiTResNetV2((1, 1, 1, 2), 1, 7).double().eval()
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gns = [m for m in bit.body.block4.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert ood.gaia_a_layers(bit) == gns and len(gns) == 6 and ood.last_feature(bit) is bit.before_head
    assert ood.gaia_layers(bit) == [*gns, bit.before_head]
    assert ood.layer_widths(bit, x) == (1024, 512, 512, 2048, 512, 512, 2048)
    torch.testing.assert_close(ood.gaia_a(bit, x), -_authors_cal_grad_value(bit, x, gns, bit.before_head))
    torch.testing.assert_close(ood.s_and_i(bit, x, steps=1), ood.gaia_z(bit, x))


def test_s_and_i_validates_and_rejects_reused_layers(tiny_resnet, tiny_images):
    with pytest.raises(ValueError, match="variant"):
        ood.s_and_i(tiny_resnet, tiny_images, variant="b")
    with pytest.raises(ValueError, match="accumulate.*known"):
        ood.s_and_i(tiny_resnet, tiny_images, accumulate="mean")
    with pytest.raises(ValueError, match="gradient.*known"):
        ood.s_and_i(tiny_resnet, tiny_images, gradient="logit")
    with pytest.raises(ValueError, match="'multiply' or 'add'"):
        ood.s_and_i_a(tiny_resnet, tiny_images, accumulate="eq11")
    with pytest.raises(ValueError, match="steps >= 1"):
        ood.s_and_i(tiny_resnet, tiny_images, steps=0)
    shared_relu = tiny_resnet.layers[0].relu  # torchvision's BasicBlock calls its ReLU twice
    with pytest.raises(ValueError, match="twice"):
        ood.gaia_z(tiny_resnet, tiny_images, layers=[shared_relu, tiny_resnet.layers])
    assert not shared_relu._forward_hooks


def test_default_gaia_layers(tiny_cnn, tiny_resnet):
    layers = ood.gaia_layers(tiny_resnet)
    assert all(isinstance(m, torch.nn.BatchNorm2d) for m in layers) and len(layers) == 1 + 2 + 3  # stem, blocks
    assert [type(m) for m in ood.gaia_layers(tiny_cnn)] == [torch.nn.Conv2d, torch.nn.Conv2d]
    with pytest.raises(ValueError, match="cam_layer"):
        ood.last_feature(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1)))


# ------------------------------------------------------------------------------------- aggregates

MAPS = torch.tensor(
    [[[1.0, 2.0], [3.0, 10.0]], [[-1.0, 4.0], [0.5, 2.5]], [[2.0, 2.0], [2.0, 3.0]]], dtype=torch.float64
)


def _naive_rmd(v):
    n = len(v)
    return sum(abs(a - b) for a in v for b in v) / (n * (n - 1)) / np.mean(v)


@pytest.mark.parametrize(
    "name,ref",
    [
        ("mean", lambda v: np.mean(v)),
        ("median", lambda v: np.median(v)),
        ("norm", lambda v: np.linalg.norm(v)),
        ("range", lambda v: np.ptp(v)),
        ("max", lambda v: np.max(v)),
        ("q3", lambda v: np.percentile(v, 75)),
        ("cv", lambda v: stats.variation(v)),
        ("rmd", _naive_rmd),
        (
            "qcd",
            lambda v: (
                (np.percentile(v, 75) - np.percentile(v, 25)) / (np.percentile(v, 75) + np.percentile(v, 25))
            ),
        ),
    ],
)
def test_aggregate_closed_forms(name, ref):
    expected = torch.tensor([ref(m.flatten().numpy()) for m in MAPS], dtype=torch.float64)
    got = ood.aggregate(name, MAPS)
    assert got.shape == (3,)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(ood.aggregate(name, MAPS[:, None]), expected)  # (N, 1, H, W) too


def test_aggregate_hand_values():
    m = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert ood.agg_median(m).item() == 2.5
    assert ood.agg_q3(m).item() == pytest.approx(3.25)
    assert ood.agg_q3(-m).item() == pytest.approx(-1.75)  # of the raw values, not of |h|
    assert ood.agg_rmd(m).item() == pytest.approx((20 / 12) / 2.5)  # sum |xi - xj| = 20 over 12 ordered pairs
    assert ood.agg_qcd(m).item() == pytest.approx((3.25 - 1.75) / (3.25 + 1.75))


@pytest.mark.parametrize("name", ["cv", "rmd", "qcd"])
def test_scale_invariant_aggregates(name, tiny_images):
    maps = tiny_images[:, 0] + 0.1
    torch.testing.assert_close(ood.aggregate(name, 7.5 * maps), ood.aggregate(name, maps))


@pytest.mark.parametrize("name", sorted(ood.AGGREGATES))
def test_aggregates_are_per_sample(name, tiny_images):
    maps = tiny_images + 0.1
    whole = ood.aggregate(name, maps)
    torch.testing.assert_close(whole, torch.cat([ood.aggregate(name, c) for c in maps.split(2)]))


def test_aggregate_edge_cases_raise():
    zero_mean = torch.tensor([[1.0, -1.0, 2.0, -2.0], [1.0, 2.0, 3.0, 4.0]])
    for name in ("cv", "rmd"):
        with pytest.raises(ValueError, match=r"samples \[0\]"):
            ood.aggregate(name, zero_mean)
    with pytest.raises(ValueError, match="Q3 \\+ Q1"):
        ood.agg_qcd(torch.tensor([[-3.0, -1.0, 1.0, 3.0]]))
    with pytest.raises(ValueError, match="NaN"):
        ood.agg_mean(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="batch"):
        ood.agg_mean(torch.tensor([1.0, 2.0]))


def test_saliency_aggregates_one_map_per_method_for_the_predicted_class(monkeypatch, tiny_cnn, tiny_images):
    calls = []

    def attribute(name, model, x, target=None, **params):
        calls.append((name, target, params))
        return x * params["scale"]

    from xai_utils import attribution

    monkeypatch.setattr(attribution, "attribute", attribute)
    specs = {"F": ("fake", {"scale": 2.0})}
    out = ood.saliency_aggregates(tiny_cnn, tiny_images, specs, ["norm", "max"], batch_size=3, chunk_size=None)
    with torch.no_grad():
        predicted = tiny_cnn(tiny_images).argmax(1)
    assert [c[0] for c in calls] == ["fake"] * len(tiny_images.split(3))  # one map per method and batch
    torch.testing.assert_close(torch.cat([c[1] for c in calls]), predicted)
    torch.testing.assert_close(out["F-norm"], ood.agg_norm(2.0 * tiny_images).double())
    torch.testing.assert_close(out["F-max"], ood.agg_max(2.0 * tiny_images).double())
    with pytest.raises(ValueError, match="unknown aggregates"):
        ood.saliency_aggregates(tiny_cnn, tiny_images, specs, ["nope"], batch_size=3, chunk_size=None)


def test_undefined_scale_invariant_aggregates_are_flagged_not_raised():
    maps = torch.stack([torch.arange(16.0).view(1, 4, 4), torch.zeros(1, 4, 4)]).double()  # 2nd: Q1 = Q3 = 0
    values, undefined = ood.flagged_aggregate(ood.AGGREGATES["qcd"], maps, scale_invariant=True)
    assert undefined.tolist() == [False, True] and values[1] == 0
    assert values[0] == ood.agg_qcd(maps[:1])[0]
    with pytest.raises(ValueError):
        ood.flagged_aggregate(ood.AGGREGATES["qcd"], maps, scale_invariant=False)


# ------------------------------------------------------------------------------------- SalAgg+MLS


def test_fit_salagg_sigmas_sign_and_score():
    rng = np.random.default_rng(0)
    agg_id, mls_id, agg_ood = rng.normal(1, 2, 50), rng.normal(5, 3, 50), rng.normal(4, 2, 40)
    fit = ood.fit_salagg(agg_id, mls_id, agg_ood, sign_rule="mean")
    assert fit.sigma_agg == pytest.approx(np.std(agg_id, ddof=1))
    assert fit.sigma_mls == pytest.approx(np.std(mls_id, ddof=1))
    assert fit.sign == -1  # ID aggregates are lower than OOD ones
    s = ood.salagg_mls(torch.from_numpy(agg_id), torch.from_numpy(mls_id), fit)
    torch.testing.assert_close(s, torch.from_numpy(-agg_id / fit.sigma_agg + mls_id / fit.sigma_mls))
    assert ood.fit_salagg(-agg_id, mls_id, -agg_ood, sign_rule="auroc").sign == 1


def test_sign_rules_mean_and_auroc_can_disagree():
    a_id, a_ood, mls = np.array([1, 1, 1, 1, 100.0]), np.array([2, 2, 2, 2, 2.0]), np.arange(5.0)
    assert ood.fit_salagg(a_id, mls, a_ood, sign_rule="mean").sign == 1  # 20.8 > 2 (the paper's rule)
    assert ood.fit_salagg(a_id, mls, a_ood, sign_rule="auroc").sign == -1  # AUROC 0.2
    with pytest.raises(ValueError, match="sign_rule"):
        ood.fit_salagg(a_id, mls, a_ood, sign_rule="median")
    with pytest.raises(ValueError, match="standard deviation"):
        ood.fit_salagg(np.ones(5), mls, a_ood, sign_rule="auroc")


def test_auroc_sign_rule_survives_an_extreme_ood_set():
    """One OOD set far above ID (uniform noise's saliency norm) must not flip S for the others."""
    rng = np.random.default_rng(3)
    a_id = rng.normal(10, 1, 200)
    a_ood = np.concatenate([rng.normal(7, 1, 300), rng.normal(100, 1, 100)])  # 3 sets below ID, 1 far above
    assert ood.sign(a_id, a_ood, rule="mean") == -1  # the pooled mean (27.7) is above the ID mean
    assert ood.sign(a_id, a_ood, rule="auroc") == 1  # ID is above 3 of 4 OOD values
    with pytest.raises(ValueError, match="sign_rule"):
        ood.sign(a_id, a_ood, rule="median")


def test_select_aggregate_uses_sign_corrected_validation_auroc():
    rng = np.random.default_rng(1)
    id_val = {"mean": rng.normal(0, 1, 60), "norm": rng.normal(0, 1, 60), "cv": rng.normal(0, 1, 60)}
    ood_val = {"mean": rng.normal(0.3, 1, 60), "norm": rng.normal(-3, 1, 60), "cv": rng.normal(0, 1, 60)}
    sel = ood.select_aggregate(id_val, ood_val, sign_rule="auroc")
    assert sel.best == "norm"  # ID above OOD by 3 sd
    assert sel.auroc["mean"] == pytest.approx(1 - auroc(id_val["mean"], ood_val["mean"]))  # sign -1 flips it
    id_val["mean"], ood_val["mean"] = id_val["mean"], id_val["mean"] + 5  # now a perfect (negative) separator
    assert ood.select_aggregate(id_val, ood_val, sign_rule="mean").best == "mean"
    with pytest.raises(ValueError, match="same"):
        ood.select_aggregate(id_val, {"mean": ood_val["mean"]}, sign_rule="auroc")


def test_select_aggregate_with_mls_scores_the_combination():
    rng = np.random.default_rng(2)
    mls_id, mls_ood = rng.normal(1, 1, 80), rng.normal(0, 1, 80)
    id_val = {"useful": rng.normal(2, 1, 80), "noise": rng.normal(0, 1, 80)}
    ood_val = {"useful": rng.normal(0, 1, 80), "noise": rng.normal(0, 1, 80)}
    sel = ood.select_aggregate(id_val, ood_val, mls_id=mls_id, mls_ood=mls_ood, sign_rule="auroc")
    assert sel.best == "useful"
    fit = ood.fit_salagg(id_val["useful"], mls_id, ood_val["useful"], sign_rule="auroc")
    expected = auroc(
        ood.salagg_mls(id_val["useful"], mls_id, fit), ood.salagg_mls(ood_val["useful"], mls_ood, fit)
    )
    assert sel.auroc["useful"] == pytest.approx(expected)
    assert sel.auroc["useful"] > auroc(mls_id, mls_ood)


def test_salagg_theorem_1_gradcam_mean_is_scaled_mls(tiny_resnet, tiny_images):
    """Salagg appendix: for GAP + linear, mean(raw Grad-CAM) = (MLS - bias_pred) / (h w)."""
    pytest.importorskip("xai_utils.attribution")
    out = ood.saliency_aggregates(tiny_resnet, tiny_images, {"G": ("gradcam", {})}, ["mean"],
                                  batch_size=len(tiny_images), chunk_size=None)["G-mean"]
    with torch.no_grad():
        logits = tiny_resnet(tiny_images)
        hw = tiny_resnet.cam_layer(tiny_resnet.stem(tiny_images)).shape[-2:].numel()
    expected = (logits.amax(1) - tiny_resnet.head.bias[logits.argmax(1)]) / hw
    torch.testing.assert_close(out, expected.detach())


class _TinyGroupNormNet(torch.nn.Module):
    """conv -> GroupNorm -> ReLU -> conv -> GroupNorm -> ReLU -> GAP -> linear (BiT's normalisation)."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU())
        self.head = nn.Linear(8, 5)

    @property
    def cam_layer(self):
        return self.body

    def forward(self, x):
        return self.head(self.body(x).mean((-1, -2)))


def test_group_norm_nets_take_the_a_path(tiny_images):
    torch.manual_seed(0)
    net = _TinyGroupNormNet().double().eval()
    layers = ood.gaia_layers(net)
    assert [type(m) for m in layers] == [torch.nn.GroupNorm, torch.nn.GroupNorm]
    ref = ood.gaia_a(net, tiny_images)
    torch.testing.assert_close(ood.s_and_i_a(net, tiny_images, steps=1), ref)
    moved = ood.s_and_i_a(net, tiny_images, steps=2, step_size=0.5)
    torch.testing.assert_close(moved, torch.cat([ood.s_and_i_a(net, c, steps=2, step_size=0.5)
                                                 for c in tiny_images.split(3)]))  # per sample
    assert torch.isfinite(moved).all() and not torch.allclose(moved, ref)
