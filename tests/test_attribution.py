"""Attribution registry: shapes, batch invariance, closed forms (IG completeness, DeepLift summation to
delta, LRP conservation, salagg's Grad-CAM theorem), input checks and post-processing."""

from __future__ import annotations

import pytest
import torch
from captum.attr import GradientShap
from torch import nn

from xai_utils import attribution as A
from xai_utils.attribution import gradient
from xai_utils.attribution.gradient import make_baselines


def _params(name: str) -> dict:
    if name == "anchor":
        return {"chunk_size": 64, "n_samples": 16, "max_size": 3}
    if name in ("lime", "kernel_shap"):
        return {"chunk_size": 64, "n_samples": 30}
    return {"chunk_size": 64} if name in A.PERTURBATION_METHODS else {}


def _logit(model, x, t):
    with torch.no_grad():
        return model(x).gather(1, t[:, None]).squeeze(1)


@pytest.mark.parametrize("name", sorted(A.METHODS))
def test_registry_shape_dtype_device_and_batch_invariance(name, tiny_resnet, tiny_images):
    x = tiny_images
    before = x.clone()
    whole = A.attribute(name, tiny_resnet, x, **_params(name))
    channels = 1 if name in A.CAM_METHODS else x.shape[1]
    assert whole.shape == (len(x), channels, *x.shape[2:])
    assert whole.dtype == x.dtype and whole.device == x.device and not whole.requires_grad
    assert torch.isfinite(whole).all()
    assert torch.equal(x, before) and not x.requires_grad  # the caller's tensor is untouched
    parts = torch.cat([A.attribute(name, tiny_resnet, part, **_params(name)) for part in x.split(3)])
    torch.testing.assert_close(whole, parts)


@pytest.mark.parametrize("name", ["saliency", "integrated_gradients", "gradcam", "lrp", "lime"])
def test_int_and_tensor_targets_agree(name, tiny_cnn, tiny_images):
    a = A.attribute(name, tiny_cnn, tiny_images, 2, **_params(name))
    b = A.attribute(name, tiny_cnn, tiny_images, torch.full((7,), 2), **_params(name))
    torch.testing.assert_close(a, b)


def test_unknown_method_and_bad_inputs(tiny_cnn, tiny_images):
    with pytest.raises(ValueError, match="known"):
        A.attribute("smoothgrad_typo", tiny_cnn, tiny_images)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        A.attribute("saliency", tiny_cnn, tiny_images[0])
    with pytest.raises(ValueError, match="out of range"):
        A.attribute("saliency", tiny_cnn, tiny_images, 4)
    with pytest.raises(ValueError, match="out of range"):
        A.attribute("lime", tiny_cnn, tiny_images, torch.tensor([0, 1, 2, 3, -1, 0, 0]))
    with pytest.raises(ValueError, match="shape"):
        A.attribute("saliency", tiny_cnn, tiny_images, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        A.attribute("saliency", tiny_cnn, tiny_images, torch.zeros(7))
    bad = tiny_images.clone()
    bad[2, 0, 1, 1] = float("nan")
    for name in ["saliency", "occlusion", "lrp"]:
        with pytest.raises(ValueError, match="NaN"):
            A.attribute(name, tiny_cnn, bad)
    with pytest.raises(ValueError, match="baseline"):
        A.integrated_gradients(tiny_cnn, tiny_images, baseline="gaussian")
    with pytest.raises(ValueError, match="composite"):
        A.lrp(tiny_cnn, tiny_images, composite="nope")


@pytest.mark.parametrize("name", sorted(A.METHODS))
def test_images_are_scanned_once_per_call(name, tiny_cnn, tiny_images, monkeypatch):
    """One full NaN/inf scan of x per ``attribute`` call (issue 14): the method checks, its helpers
    (the perturbation engine, Grad-CAM's raw map) take checked inputs."""
    scans, isfinite = [], torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t, *a, **k: scans.append(t is tiny_images) or isfinite(t, *a, **k))
    A.attribute(name, tiny_cnn, tiny_images, **_params(name))
    assert sum(scans) == 1


def test_saliency_abs_is_the_magnitude_of_the_signed_gradient(tiny_cnn, tiny_images):
    signed = A.attribute("saliency", tiny_cnn, tiny_images, 1)
    assert (signed < 0).any()  # the registry's default keeps the sign
    torch.testing.assert_close(A.attribute("saliency", tiny_cnn, tiny_images, 1, abs=True), signed.abs())


def test_guided_gradcam_layer_by_module_or_name(tiny_cnn, tiny_images):
    first = A.guided_gradcam(tiny_cnn, tiny_images, 1, layer="body.0")
    torch.testing.assert_close(first, A.guided_gradcam(tiny_cnn, tiny_images, 1, layer=tiny_cnn.body[0]))
    assert not torch.allclose(first, A.guided_gradcam(tiny_cnn, tiny_images, 1))  # default: cam_layer
    with pytest.raises(ValueError, match="no submodule"):
        A.guided_gradcam(tiny_cnn, tiny_images, 1, layer="body.9")


def test_integrated_gradients_completeness(tiny_resnet, tiny_images):
    x, t = tiny_images[:4], torch.tensor([0, 1, 2, 3])
    delta = _logit(tiny_resnet, x, t) - _logit(tiny_resnet, torch.zeros_like(x), t)
    ig = A.integrated_gradients(tiny_resnet, x, t, n_steps=200, internal_batch_size=300)
    torch.testing.assert_close(ig.sum(dim=(1, 2, 3)), delta, atol=1e-4, rtol=1e-3)
    uni = A.integrated_gradients(tiny_resnet, x, t, baseline="uniform", n_steps=200)
    base = make_baselines(x, "uniform").expand_as(x)
    torch.testing.assert_close(
        uni.sum(dim=(1, 2, 3)), _logit(tiny_resnet, x, t) - _logit(tiny_resnet, base, t), atol=1e-4, rtol=1e-3
    )


def test_integrated_gradients_chunking_changes_no_result(tiny_resnet, tiny_images):
    """Images split into groups and steps into passes (default: the measured chunk) give the same maps."""
    t = tiny_resnet(tiny_images).argmax(1)
    whole = A.integrated_gradients(tiny_resnet, tiny_images, t, n_steps=20, internal_batch_size=10_000)
    for chunk in (1, 3, None):
        part = A.integrated_gradients(tiny_resnet, tiny_images, t, n_steps=20, internal_batch_size=chunk)
        torch.testing.assert_close(part, whole, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="internal_batch_size"):
        A.integrated_gradients(tiny_resnet, tiny_images, t, internal_batch_size=0)


@pytest.mark.parametrize("name", ["deeplift", "deeplift_shap", "gradient_shap"])
def test_grouped_methods_give_the_maps_of_one_batch(name, tiny_resnet, tiny_images, monkeypatch):
    """DeepLift, DeepLiftShap and GradientSHAP run in groups of images sized by the measured chunk;
    the maps must not depend on the grouping (a per-image baseline follows its image)."""
    t = tiny_resnet(tiny_images).argmax(1)
    params = {"baseline": tiny_images.flip(0) * 0.5} if name == "deeplift" else {}
    monkeypatch.setattr(gradient, "best_chunk_size", lambda model, x, **kw: 10_000)
    whole = A.attribute(name, tiny_resnet, tiny_images, t, **params)
    monkeypatch.setattr(gradient, "best_chunk_size", lambda model, x, **kw: 3)  # groups of 1 or 3 images
    grouped = A.attribute(name, tiny_resnet, tiny_images, t, **params)
    torch.testing.assert_close(grouped, whole, atol=1e-10, rtol=1e-8)


def test_deeplift_summation_to_delta_on_safe_resnet(tiny_resnet, tiny_images):
    t = tiny_resnet(tiny_images).argmax(1)
    delta = _logit(tiny_resnet, tiny_images, t) - _logit(tiny_resnet, torch.zeros_like(tiny_images), t)
    dl = A.deeplift(tiny_resnet, tiny_images, t)
    torch.testing.assert_close(dl.sum(dim=(1, 2, 3)), delta, atol=1e-10, rtol=1e-8)
    assert A.safe_model(tiny_resnet) is A.safe_model(tiny_resnet)  # one safe copy per model


def test_safe_copy_follows_weight_updates(tiny_cnn, tiny_images):
    a = A.deeplift(tiny_cnn, tiny_images, 0)
    with torch.no_grad():
        tiny_cnn.head.weight.mul_(2.0)
    b = A.deeplift(tiny_cnn, tiny_images, 0)
    torch.testing.assert_close(b, 2 * a)


@pytest.mark.parametrize(("composite", "rtol"), [("epsilon", 1e-5), ("epsilon_plus_flat", 2e-3)])
def test_lrp_conserves_the_logit_without_biases(composite, rtol, tiny_resnet, tiny_images):
    """Bias-free rules (zero_params='bias'), tiny stabilisers: sum of relevance == target logit.
    epsilon: exact up to the stabiliser; z+ (epsilon_plus_flat) loses relevance where a layer's positive
    contributions vanish, hence the looser tolerance."""
    t = tiny_resnet(tiny_images).argmax(1)
    rel = A.lrp(
        tiny_resnet, tiny_images, t, composite=composite, zero_params="bias", epsilon=1e-12, stabilizer=1e-12
    )
    torch.testing.assert_close(rel.sum(dim=(1, 2, 3)), _logit(tiny_resnet, tiny_images, t), rtol=rtol, atol=0)
    params = [p.clone() for p in tiny_resnet.state_dict().values()]
    assert all(torch.equal(p, q) for p, q in zip(params, tiny_resnet.state_dict().values(), strict=True))
    assert not any(m._forward_hooks or m._backward_hooks for m in tiny_resnet.modules())  # hooks removed


def test_lrp_passes_relevance_through_input_normalisation(tiny_cnn, tiny_images):
    class Normalize(nn.Module):
        def forward(self, x):
            return (x - 0.5) / 0.25

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.normalize, self.net = Normalize(), tiny_cnn

        def forward(self, x):
            return self.net(self.normalize(x))

    model = Wrapped()
    t = tiny_cnn(tiny_images).argmax(1)
    rel = A.lrp(
        model, tiny_images, t, composite="epsilon", zero_params="bias", epsilon=1e-12, stabilizer=1e-12
    )
    torch.testing.assert_close(rel.sum(dim=(1, 2, 3)), _logit(model, tiny_images, t), rtol=1e-5, atol=0)


@pytest.mark.parametrize("fixture", ["tiny_cnn", "tiny_resnet"])
def test_salagg_theorem_gradcam_mean_is_logit_minus_bias(fixture, request, tiny_images):
    """GAP + linear head: alpha_k = w_k / (h w), so mean_ij(sum_k alpha_k A^k) = (logit - b) / (h w)."""
    model = request.getfixturevalue(fixture)
    t = model(tiny_images).argmax(1)
    raw = A.gradcam_raw(model, tiny_images, t)
    h, w = raw.shape[-2:]
    expected = (_logit(model, tiny_images, t) - model.head.bias[t].detach()) / (h * w)
    torch.testing.assert_close(raw.mean(dim=(1, 2, 3)), expected)
    up = A.gradcam(model, tiny_images, t)  # nearest upsampling by an integer factor keeps the mean
    assert up.shape == (7, 1, 8, 8)
    torch.testing.assert_close(up.mean(dim=(1, 2, 3)), expected)
    torch.testing.assert_close(A.gradcam_relu(model, tiny_images, t), A.upsample(raw.clamp_min(0), (8, 8)))


def test_gradient_shap_equals_captum_on_a_linear_model(tiny_images):
    """f linear: every draw gives (x - b) * w; with a zero baseline ours and captum's are x * w exactly."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).double()
    ours = A.gradient_shap(model, tiny_images, 1, baselines="zero", n_samples=7)
    ref = GradientShap(model).attribute(
        tiny_images, torch.zeros(2, 3, 8, 8, dtype=torch.float64), target=1, n_samples=7
    )
    torch.testing.assert_close(ours, ref.detach())
    torch.testing.assert_close(ours, tiny_images * model[1].weight[1].view(1, 3, 8, 8))


def test_reduce_channels_and_normalize():
    a = torch.tensor([[[[1.0, -2.0]], [[-3.0, 1.0]]]])  # (1, 2, 1, 2)
    torch.testing.assert_close(A.reduce_channels(a, "sum"), torch.tensor([[[[-2.0, -1.0]]]]))
    torch.testing.assert_close(A.reduce_channels(a, "abs_sum"), torch.tensor([[[[4.0, 3.0]]]]))
    torch.testing.assert_close(A.reduce_channels(a, "max_abs"), torch.tensor([[[[3.0, 2.0]]]]))
    with pytest.raises(ValueError, match="known"):
        A.reduce_channels(a, "mean")
    maps = torch.stack([a[0], torch.zeros_like(a[0]), torch.full_like(a[0], 2.0)])
    out, flag = A.normalize(maps, "max_abs")
    torch.testing.assert_close(out[0], a[0] / 3)
    assert flag.tolist() == [False, True, False] and (out[1] == 0).all() and (out[2] == 1).all()
    out, flag = A.normalize(maps, "minmax")
    assert (
        flag.tolist() == [False, True, True]
        and out[0].min() == 0
        and out[0].max() == 1
        and (out[2] == 0).all()
    )
    with pytest.raises(ValueError, match="constant"):
        A.normalize(maps, "minmax", strict=True)
    with pytest.raises(ValueError, match="NaN"):
        A.normalize(torch.tensor([[float("nan"), 1.0]]))


@pytest.mark.parametrize("arch", ["cifar_resnet", "openood_resnet18_32x32"])
def test_lrp_conserves_on_shortcut_block_resnets(arch):
    """Our ShortcutBlock canonizer: residual sums of CIFAR option-A / OpenOOD ResNets conserve relevance.
    Bias-free check: BN shifts and the head bias are zero, so the epsilon rule has nothing to absorb.
    (Without the canonizer the sum is off by a factor of order 10 on cifar_resnet.)"""
    models = pytest.importorskip("xai_utils.models")
    torch.manual_seed(0)
    model = (
        models.cifar_resnet(8, 4) if arch == "cifar_resnet" else models.openood_resnet18_32x32(4)
    ).double()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.zero_()
            m.bias.data.zero_()
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=gen))
    model.head.bias.data.zero_()
    model.eval()
    x = torch.rand(2, 3, 16, 16, generator=gen, dtype=torch.float64)
    t = model(x).argmax(1)
    rel = A.lrp(model, x, t, composite="epsilon", epsilon=1e-9, stabilizer=1e-9)
    torch.testing.assert_close(rel.sum(dim=(1, 2, 3)), _logit(model, x, t), rtol=1e-4, atol=0)
    assert not any(hasattr(m, "canonizer_sum") for m in model.modules())  # canonizer removed on exit


def test_every_method_has_one_display_name():
    assert set(A.LABELS) == set(A.METHODS)
    assert len(set(A.LABELS.values())) == len(A.LABELS)  # no two methods share a name
