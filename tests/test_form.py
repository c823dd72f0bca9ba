"""The model in its fastest form (issue 22): the channels_last form gives the eager model's maps within 1e-5
relative on every registered attribution method and OOD score; the choice is measured only where it may be
used."""

from __future__ import annotations

import pytest
import torch
from test_attribution import _params

from xai_utils import attribution as A
from xai_utils import models, ood
from xai_utils.models import form as F

pytestmark = pytest.mark.model_forms


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))


def test_channels_last_gives_the_eager_outputs_and_leaves_the_model_alone(tiny_resnet, tiny_images):
    net = F.as_form(tiny_resnet, "channels_last")
    with torch.no_grad():
        assert _rel(tiny_resnet(tiny_images), net(tiny_images)) <= F.RTOL
    assert all(p.is_contiguous() for p in tiny_resnet.parameters())  # a copy was converted, not the model
    with pytest.raises(ValueError, match="unknown model form 'fast'"):
        F.as_form(tiny_resnet, "fast")
    with pytest.raises(ValueError, match="known: eager"), F.forced("fast"):
        pass


#: Methods whose rules are module hooks (captum's DeepLift and guided ReLUs, zennit's LRP rules, Grad-CAM's
#: layer hooks), which a copy or a traced graph of the model would not run: they keep the eager model.
HOOKED = {"deconvolution", "deeplift", "deeplift_shap", "gradcam", "gradcam_relu", "guided_backprop",
          "guided_gradcam", "lrp"}


@pytest.mark.parametrize("name", sorted(A.METHODS))
def test_every_method_gives_its_eager_maps_in_the_channels_last_form(name, tiny_resnet, tiny_images, monkeypatch):
    built, as_form = [], F.as_form
    monkeypatch.setattr(F, "as_form", lambda model, form: built.append(form) or as_form(model, form))
    eager = A.attribute(name, tiny_resnet, tiny_images, **_params(name))
    with F.forced("channels_last"):
        fast = A.attribute(name, tiny_resnet, tiny_images, **_params(name))
    assert bool(built) == (name not in HOOKED), built  # the method ran the form (or keeps eager by its rules)
    assert _rel(eager, fast) <= F.RTOL, name


#: Scores whose work is module hooks (RankFeat's rank-1 removal, GAIA's and S&I's layer captures): eager.
HOOKED_SCORES = {"rankfeat", "gaia_z", "gaia_a", "s_and_i", "s_and_i_a"}


@pytest.mark.parametrize("name", sorted(ood.SCORES))
def test_every_ood_score_gives_its_eager_values_in_the_channels_last_form(name, tiny_resnet, tiny_images,
                                                                         monkeypatch):
    built, as_form = [], F.as_form
    monkeypatch.setattr(F, "as_form", lambda model, form: built.append((type(model).__name__, form))
                        or as_form(model, form))
    kw = {"fit": ood.FITTED[name](tiny_resnet, tiny_images)} if name in ood.FITTED else {}
    eager = ood.score(name, tiny_resnet, tiny_images, **kw)
    with F.forced("channels_last"):
        fast = ood.score(name, tiny_resnet, tiny_images, **kw)
    assert bool(built) == (name not in HOOKED_SCORES), built
    if name in ("react", "gradnorm"):  # they read the penultimate features: that method's form
        assert built == [("Method", "channels_last")]
    assert _rel(eager, fast) <= F.RTOL, name


def test_a_method_form_is_cached_apart_and_names_a_missing_method(tiny_resnet, tiny_images, monkeypatch):
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    whole = F.fastest_form(tiny_resnet, tiny_images, batch=8, workload=10_000, candidates=("channels_last",))
    feats = F.fastest_form(tiny_resnet, tiny_images, batch=8, workload=10_000, candidates=("channels_last",),
                           method="features")
    assert feats.seconds_per_image is not whole.seconds_per_image  # measured on its own
    with torch.no_grad():
        assert _rel(tiny_resnet.features(tiny_images), feats.module(tiny_images)) <= F.RTOL
    with pytest.raises(ValueError, match="no method 'penultimate'"):
        F.fastest_form(tiny_resnet, tiny_images, method="penultimate")


def test_the_choice_is_measured_only_where_it_may_be_used(tiny_resnet, tiny_images, monkeypatch):
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    small = F.fastest_form(tiny_resnet, tiny_images, batch=8, workload=8)  # one batch: not worth measuring
    assert small.form == "eager" and small.module is tiny_resnet and not small.seconds_per_image
    for _ in range(14):  # 15 batches so far: still not
        assert not F.fastest_form(tiny_resnet, tiny_images, batch=8, workload=8).seconds_per_image
    assert F.fastest_form(tiny_resnet, tiny_images, batch=8, workload=8).seconds_per_image  # 16: measured
    chosen = F.fastest_form(tiny_resnet, tiny_images, batch=8, backward=True, workload=10_000,
                            candidates=("channels_last",))
    assert set(chosen.seconds_per_image) == {"eager", "channels_last"} and chosen.form in chosen.seconds_per_image
    again = F.fastest_form(tiny_resnet, tiny_images, batch=8, backward=True, workload=10_000,
                           candidates=("channels_last",))
    assert again.seconds_per_image is chosen.seconds_per_image and again.module is chosen.module  # cached
    compiled = F.fastest_form(tiny_resnet, tiny_images, batch=8, workload=200)  # 25 batches, milliseconds
    assert "not worth compiling" in compiled.left_out["compile"]
    handle = tiny_resnet.head.register_forward_hook(lambda *a: None)  # someone observes the model
    try:
        assert F.fastest_form(tiny_resnet, tiny_images[:1], batch=8, workload=10_000).module is tiny_resnet
    finally:
        handle.remove()
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)  # the notebooks
    assert F.fastest_form(models.SmallResNet(num_classes=3, width=4), tiny_images, batch=8,
                          workload=10_000).form == "eager"


def test_the_cache_keeps_no_model_alive(tiny_images, monkeypatch):
    import gc
    import weakref

    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    for candidates in (("channels_last",), ()):  # a copy chosen, or the eager model itself
        for method in ("forward", "features"):
            model = models.SmallResNet(num_classes=3, width=4).double().eval()
            assert F.fastest_form(model, tiny_images, batch=8, workload=10_000, candidates=candidates,
                                  method=method).seconds_per_image
            ref = weakref.ref(model)
            del model
            gc.collect()
            assert ref() is None, (candidates, method)


def test_a_form_that_changes_the_results_is_left_out(tiny_resnet, tiny_images, monkeypatch):
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)

    class Off(torch.nn.Module):
        def forward(self, x):
            return tiny_resnet(x) * (1 + 1e-3)

    monkeypatch.setattr(F, "as_form", lambda model, form: Off())
    chosen = F.fastest_form(tiny_resnet, tiny_images, batch=8, workload=10_000, candidates=("channels_last",))
    assert chosen.form == "eager" and "differ" in chosen.left_out["channels_last"]


def test_the_bench_counter_does_not_pin_eager(tiny_resnet, tiny_images, monkeypatch):
    from xai_utils.bench.timing import PassCounter

    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    counter = PassCounter(tiny_resnet)
    try:
        chosen = F.fastest_form(tiny_resnet, tiny_images, batch=8, workload=10_000, candidates=("channels_last",))
        assert "channels_last" in chosen.seconds_per_image
        with counter.count(), torch.no_grad():
            F.as_form(tiny_resnet, "channels_last")(tiny_images)
        assert counter.forward == len(tiny_images)  # the copy shares the counting hook
    finally:
        counter.remove()
