"""Tests of xai_utils.models: the model contract, the trainer and its cache, real checkpoints, captum_safe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import DeepLift
from torch import nn
from torchvision.models.resnet import BasicBlock

from xai_utils import config, models
from xai_utils.models import cached, real, safe, small, train

SMALL_INPUT = {"small_resnet": 16, "small_vgg": 32, "small_alexnet": 32, "small_inception": 16}
REAL_INPUT = {"inception_v3": 75, "cifar": 32, "openood": 32}
HEAVY = {"vgg16", "resnet101", "inception_v3", "densenet121", "alexnet", "resnet50", "resnet34"}


def _input_size(name: str) -> int:
    return next((s for k, s in REAL_INPUT.items() if name.startswith(k)), 64)


def _randomise_bn(model: nn.Module, seed: int = 1) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=gen))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=gen))
    return model


def _check_contract(model: nn.Module, x: torch.Tensor, num_classes: int) -> None:
    model.eval()
    x0 = x.clone()
    maps = []
    handle = model.cam_layer.register_forward_hook(lambda _m, _i, out: maps.append(out))
    with torch.no_grad():
        logits = model(x)
        handle.remove()
        feats = model.features(x)
    assert torch.equal(x, x0), "the model changed its input"
    assert isinstance(model.head, nn.Linear) and model.head.in_features == feats.shape[1]
    assert logits.shape == (len(x), num_classes) and feats.dim() == 2
    torch.testing.assert_close(logits, model.head(feats))
    assert isinstance(next(model.children()), small.Normalize)  # normalisation comes first
    assert len(maps) == 1 and maps[0].dim() == 4 and maps[0].shape[0] == len(x)
    with torch.no_grad():  # per-sample: batch composition does not matter in eval mode
        torch.testing.assert_close(torch.cat([model(c) for c in x.split(1)]), logits, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- small nets
SMALL = sorted(set(models.ARCHITECTURES) - models.PAPER_ARCHITECTURES)


@pytest.mark.parametrize("arch", SMALL)
def test_small_contract(arch):
    torch.manual_seed(0)
    s = SMALL_INPUT[arch]
    model = models.build(arch, 5, **({"image_size": s} if arch == "small_vgg" else {}))
    assert isinstance(list(model.children())[0], small.Normalize)
    _check_contract(_randomise_bn(model), torch.rand(3, 3, s, s), 5)


@pytest.mark.parametrize("arch", SMALL)
def test_small_grey_input_and_64px(arch):
    model = models.build(arch, 3, in_channels=1, **({"image_size": 64} if arch == "small_vgg" else {})).eval()
    assert model(torch.rand(2, 1, 64, 64)).shape == (2, 3)
    with pytest.raises(ValueError, match="channels|expected images"):
        model(torch.rand(2, 3, 64, 64))


def test_build_unknown_lists_known():
    with pytest.raises(ValueError, match="unknown architecture 'resnet_tiny'.*cifar_resnet20.*small_resnet"):
        models.build("resnet_tiny", 3)
    assert SMALL == ["small_alexnet", "small_inception", "small_resnet", "small_vgg"]  # the offline nets are the small_* entries


@pytest.mark.parametrize("depth", [8, 14, 20])
def test_small_resnet_depth_and_blocks(depth):
    model = small.SmallResNet(4, depth=depth, width=8)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 3 * (depth - 2) // 6
    assert all(type(b) is BasicBlock for b in blocks)  # zennit's ResNetCanonizer matches exactly this class
    # depth counts the 3x3 convs plus the linear layer (1x1 downsample convs excluded)
    convs3 = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs3) + 1 == depth
    downs = [b.downsample for b in blocks if b.downsample is not None]
    assert len(downs) == 2 and all(
        isinstance(d[0], nn.Conv2d) and d[0].kernel_size == (1, 1) and isinstance(d[1], nn.BatchNorm2d)
        for d in downs
    )
    with pytest.raises(ValueError, match="6n\\+2"):
        small.SmallResNet(4, depth=10)


def test_normalize_closed_form_and_errors():
    norm = small.Normalize([0.5, 0.25], [0.5, 2.0])
    x = torch.rand(2, 2, 3, 3)
    expected = torch.stack([(x[:, 0] - 0.5) / 0.5, (x[:, 1] - 0.25) / 2.0], 1)
    torch.testing.assert_close(norm(x), expected)
    assert norm(x.double()).dtype == torch.float64
    with pytest.raises(ValueError, match="std > 0"):
        small.Normalize([0.5], [0.0])
    with pytest.raises(ValueError, match="same number"):
        small.Normalize([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="expected images"):
        norm(torch.rand(2, 3, 3, 3))
    assert set(small.Normalize([0.0], [1.0], persistent=False).state_dict()) == set()


# ---------------------------------------------------------------- trainer
def _toy_data(n: int, seed: int, size: int = 12):
    """6 classes: which of 3 channels carries a bright square, and whether it is left or right."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 6
    x = 0.3 * torch.rand(n, 3, size, size, generator=gen)
    off = torch.randint(0, size // 2 - 3, (n, 2), generator=gen)
    for i in range(n):  # test data only
        c, side = int(y[i]) % 3, int(y[i]) // 3
        r0, c0 = int(off[i, 0]), int(off[i, 1]) + side * size // 2
        x[i, c, r0 : r0 + 4, c0 : c0 + 4] = 0.9
    return x, y


@pytest.fixture(scope="module")
def toy():
    return _toy_data(240, 0) + _toy_data(60, 1)


TOY_KW = dict(epochs=3, batch_size=32, lr=1e-2, progress=False)


def test_train_learns_and_reports(toy):
    torch.set_num_threads(2)
    res = train.train_classifier("small_resnet", dict(depth=8, width=8), *toy, seed=0, **TOY_KW)
    assert not res.model.training and res.val_acc >= 0.9
    assert len(res.history) == 3 and {"loss", "val_acc", "seconds"} <= set(res.history[0])
    assert res.val_acc == max(h["val_acc"] for h in res.history) == res.history[res.best_epoch - 1]["val_acc"]
    assert res.arch_kwargs["num_classes"] == 6 and len(res.arch_kwargs["mean"]) == 3
    with torch.no_grad():
        acc = (res.model(toy[2]).argmax(1) == toy[3]).float().mean().item()
    assert acc == pytest.approx(res.val_acc)  # the model holds the best epoch's weights


def test_train_is_deterministic(toy):
    torch.set_num_threads(2)
    kw = dict(TOY_KW, epochs=1, augment=True)
    a = train.train_classifier(
        "small_vgg", dict(width=4, image_size=12), *toy, seed=3, **kw
    ).model.state_dict()
    b = train.train_classifier(
        "small_vgg", dict(width=4, image_size=12), *toy, seed=3, **kw
    ).model.state_dict()
    c = train.train_classifier(
        "small_vgg", dict(width=4, image_size=12), *toy, seed=4, **kw
    ).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_train_early_stopping(toy):
    # lr = 0 never improves after epoch 1: patience 2 stops after epoch 3
    res = train.train_classifier(
        "small_alexnet",
        dict(width=4, hidden=16),
        *toy,
        epochs=10,
        batch_size=64,
        lr=0.0,
        schedule="constant",
        patience=2,
        progress=False,
    )
    assert len(res.history) == 3 and res.best_epoch == 1


def test_regular_evaluation_rule_follows_the_paper():
    # improvement: counter * r_f; no improvement: + 1; reaching n_l stops; beating the target stops
    rule = train.RegularEvaluation(1, target_acc=0.96, refresh=0.5, n_limit=3)
    n, best, stop = rule.update(0.0, -1.0, 0.5)
    assert (n, best, stop) == (0.0, 0.5, "")
    n, best, stop = rule.update(n, best, 0.4)
    assert (n, best, stop) == (1.0, 0.5, "")
    n, best, stop = rule.update(n, best, 0.5)  # equal: no improvement
    assert (n, stop) == (2.0, "")
    n, best, stop = rule.update(n, best, 0.6)
    assert (n, best, stop) == (1.0, 0.6, "")
    assert rule.update(2.5, best, 0.1)[2] == "early"
    assert rule.update(5.0, 0.9, 0.97)[2] == "target"
    with pytest.raises(ValueError, match="refresh"):
        train.RegularEvaluation(2, refresh=1.5)


def _regular(model, toy, n_shards=2, epochs=3, batch_size=4, lr=1e-3, **rule):
    x, y, xv, yv = toy
    stopping = train.RegularEvaluation(n_shards, **rule)
    return train.fit(model, x[:48], y[:48], xv[:20], yv[:20], epochs=epochs, batch_size=batch_size, lr=lr,
                     weight_decay=0.0, schedule="constant", stopping=stopping, device="cpu", progress=False)


def test_regular_evaluation_stops_on_target_after_first_validation(toy):
    torch.manual_seed(0)
    res = _regular(small.SmallVGG(6, width=2, image_size=12), toy, every=2, target_acc=-1.0)
    assert res.stop == "target" and res.iterations == 2 and len(res.history) == 1
    assert set(res.history[0]) == {"iteration", "shard", "shard_acc", "n_early"} and 0 <= res.val_acc <= 1


def test_regular_evaluation_early_stops_when_nothing_improves(toy):
    # lr = 0 and no BatchNorm: the accuracy never changes, so after the first validation the counter
    # grows by one
    torch.manual_seed(0)
    res = _regular(small.SmallAlexNet(6, width=2, hidden=8), toy, n_shards=1, epochs=5, lr=0.0, every=1,
                   target_acc=2.0, n_limit=3, refresh=0.5)
    assert res.stop == "early" and res.iterations == 4
    assert [h["n_early"] for h in res.history] == [0.0, 1.0, 2.0, 3.0]


def test_regular_evaluation_runs_out_of_epochs_and_keeps_the_final_weights(toy):
    torch.manual_seed(0)
    model = small.SmallVGG(6, width=2, image_size=12)
    res = _regular(model, toy, epochs=2, batch_size=8, lr=1e-2, every=100, target_acc=2.0)
    assert res.stop == "epochs" and res.iterations == 12 and res.epochs == pytest.approx(2.0)
    assert res.model is model and not model.training and res.best_epoch == 2
    assert res.val_acc == pytest.approx(train.accuracy(model, toy[2][:20], toy[3][:20]))


def test_augment_is_a_shift_or_flip():
    x = torch.rand(16, 2, 6, 6)
    out = train._augment(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
    # the centre 2x2 of each image is some 2x2 window of the edge-padded (and maybe flipped) input
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for i in range(len(x)):  # naive reference
        ok = any(
            torch.equal(out[i, :, 2:4, 2:4], img[:, r : r + 2, c : c + 2])
            for img in (padded[i], padded[i].flip(2))
            for r in range(7)
            for c in range(7)
        )
        assert ok


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda x, y: (x, y + 10), "out of range"),
        (lambda x, y: (x * float("nan"), y), "NaN"),
        (lambda x, y: (x * 3, y), r"\[0, 1\]"),
        (lambda x, y: (x[:, 0], y), r"\(N, C, H, W\)"),
        (lambda x, y: (x, y[:-1]), "y_train"),
        (lambda x, y: (x, y.float()), "integer"),
    ],
)
def test_train_rejects_bad_input(toy, bad, match):
    x, y = bad(toy[0], toy[1])
    with pytest.raises(ValueError, match=match):
        train.train_classifier(
            "small_resnet", dict(num_classes=6), x, y, toy[2], toy[3], epochs=1, progress=False
        )


def test_train_rejects_unknown_names(toy):
    with pytest.raises(ValueError, match="small_resnet"):
        train.train_classifier("nope", {}, *toy, epochs=1, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        train.train_classifier("small_resnet", {}, *toy, epochs=1, optimizer="lbfgs", progress=False)


def test_cached_classifier_hits_without_training(toy, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)
    args = (
        "small_resnet",
        dict(depth=8, width=4),
        dict(epochs=1, batch_size=64, seed=0),
        {"gen": "toy", "seed": 0},
    )
    first = cached.cached_classifier(*args, *toy, progress=False)
    assert not first.from_cache and len(list(tmp_path.rglob("*.pt"))) == 1

    def boom(*_a, **_k):
        raise AssertionError("trained on a cache hit")

    monkeypatch.setattr(cached, "train_classifier", boom)
    second = cached.cached_classifier(*args, *toy, progress=False)
    assert second.from_cache and not second.model.training
    assert second.history == first.history and second.best_epoch == first.best_epoch
    with torch.no_grad():
        torch.testing.assert_close(second.model(toy[2]), first.model(toy[2]))
    with pytest.raises(AssertionError, match="cache hit"):  # a different data_key is a miss
        cached.cached_classifier(*args[:3], {"gen": "toy", "seed": 1}, *toy, progress=False)


def test_cached_classifier_keys_init_state_by_content(toy, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)
    init = small.SmallResNet(6, depth=8, width=4).state_dict()
    kw = dict(epochs=1, batch_size=64, init_state=init)
    cached.cached_classifier("small_resnet", dict(depth=8, width=4), kw, {"d": 0}, *toy, progress=False)
    init2 = {k: v + 1 if v.is_floating_point() else v for k, v in init.items()}
    cached.cached_classifier(
        "small_resnet", dict(depth=8, width=4), dict(kw, init_state=init2), {"d": 0}, *toy, progress=False
    )
    assert len(list(tmp_path.rglob("*.pt"))) == 2


@pytest.mark.slow
def test_default_offline_recipe():
    """The recommended offline classifier: >= 90% test accuracy on 6 cell classes at 32x32."""
    cells = pytest.importorskip("xai_utils.data.cells")
    torch.set_num_threads(2)
    d = models.DEFAULT_OFFLINE
    n_tr, n_va, size, classes = (d["data"][k] for k in ("n_train", "n_val", "size", "classes"))
    tr, va, te = (
        cells.make_cells(n, size=size, classes=classes, seed=s) for n, s in ((n_tr, 0), (n_va, 1), (1200, 2))
    )
    res = train.train_classifier(
        d["arch"], d["arch_kwargs"], tr.x, tr.y, va.x, va.y, progress=False, **d["train_kwargs"]
    )
    with torch.no_grad():
        assert (res.model(te.x).argmax(1) == te.y).float().mean() >= 0.9


# ---------------------------------------------------------------- real architectures
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n
     for n in sorted(models.PAPER_ARCHITECTURES)],
)
def test_real_contract(name):
    torch.manual_seed(0)
    s = _input_size(name)
    _check_contract(_randomise_bn(models.build(name, 7)), torch.rand(2, 3, s, s), 7)


@pytest.mark.parametrize("name", ["resnet34", "mnasnet1_0", "densenet121"])
def test_torchvision_wrapper_matches_torchvision_forward(name):
    torch.manual_seed(0)
    model = models.build(name, 5).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.net(model.normalize(x)))


def test_cifar_resnet_layout_and_option_a():
    model = real.cifar_resnet(20)
    assert sum(p.numel() for p in model.parameters()) == 269_722  # He et al.: 0.27M
    assert sum(p.numel() for p in real.cifar_resnet(56).parameters()) == 853_018  # 0.85M
    assert not any(k.startswith("normalize") for k in model.state_dict())
    block = model.layer2[0]
    assert isinstance(block, real.ShortcutBlock) and isinstance(block.shortcut, real.OptionAShortcut)
    x = torch.randn(2, 16, 8, 8)
    out = block.shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0
    with pytest.raises(ValueError, match="6n\\+2"):
        real.cifar_resnet(21)


def test_openood_resnet18_keys():
    keys = set(real.openood_resnet18_32x32(10).state_dict())
    assert {
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer2.0.shortcut.0.weight",
        "layer2.0.shortcut.1.running_mean",
        "layer4.1.bn2.bias",
        "fc.weight",
        "fc.bias",
    } <= keys
    assert not any(k.startswith("layer1.0.shortcut") for k in keys)  # identity shortcut: no parameters
    assert len(keys) == 122


def _fake_checkpoint(model: nn.Module, path, **extra):
    sd = {
        "module." + k: v.clone()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    torch.save({"best_prec1": 91.0, "state_dict": sd, **extra}, path)
    return path


def test_load_checkpoint_fake_akamaster(tmp_path):
    torch.manual_seed(1)
    src = _randomise_bn(real.cifar_resnet(20))
    path = _fake_checkpoint(src, tmp_path / "r20.th")
    torch.manual_seed(2)
    model = real.real_classifier("cifar_resnet20", path, num_classes=10)
    for k, v in src.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(model.state_dict()[k], v), k
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), src.eval()(x))


def test_load_checkpoint_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    src = models.build("mnasnet1_0", 4)
    torch.save(src.net.state_dict(), tmp_path / "plain.pt")  # torchvision's own layout, into .net
    torch.save({"model": src.state_dict()}, tmp_path / "wrapped.pt")  # our wrapper's layout
    for f in ("plain.pt", "wrapped.pt"):
        torch.manual_seed(5)
        model = real.load_checkpoint(models.build("mnasnet1_0", 4), tmp_path / f)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in src.state_dict().items())


def test_load_checkpoint_errors(tmp_path):
    model = real.cifar_resnet(20)
    with pytest.raises(FileNotFoundError, match=r"nope\.th not found"):
        real.load_checkpoint(model, tmp_path / "nope.th")
    (tmp_path / "corrupt.th").write_bytes(b"\x80\x04 definitely not a checkpoint")
    with pytest.raises(ValueError, match=r"corrupt\.th"):
        real.load_checkpoint(model, tmp_path / "corrupt.th")
    _fake_checkpoint(real.cifar_resnet(20), tmp_path / "r20.th")
    with pytest.raises(ValueError, match=r"missing keys.*layer2\.1.*unexpected keys|unexpected"):
        real.load_checkpoint(real.cifar_resnet(32), tmp_path / "r20.th")
    with pytest.raises(ValueError, match=r"size mismatch|does not fit"):
        real.load_checkpoint(real.cifar_resnet(20, num_classes=100), tmp_path / "r20.th")
    sd = {"module." + k: v for k, v in real.cifar_resnet(20).state_dict().items()}
    sd["module.extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd}, tmp_path / "extra.th")
    with pytest.raises(ValueError, match=r"1 unexpected keys \['extra.weight'\]"):
        real.load_checkpoint(real.cifar_resnet(20), tmp_path / "extra.th")
    torch.save({"epoch": 3, "notes": "no weights"}, tmp_path / "meta.th")
    with pytest.raises(ValueError, match="no state dict"):
        real.load_checkpoint(model, tmp_path / "meta.th")


def _cifar_jpegs(root, per_class: int):
    from PIL import Image

    folder = root / "cifar10_test_jpg"
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert classes[0] == "airplane" and classes[-1] == "truck" and len(classes) == 10
    xs, ys = [], []
    for label, name in enumerate(classes):
        for f in sorted((folder / name).glob("*.jpg"))[:per_class]:
            xs.append(np.asarray(Image.open(f).convert("RGB")))
            ys.append(label)
    return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255, torch.tensor(ys)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "name, file, lo",
    [
        ("cifar_resnet20", "resnet20-12fca82f.th", 0.74),
        pytest.param("cifar_resnet56", "resnet56-4bfd9763.th", 0.76, marks=pytest.mark.slow),
    ],
)
def test_real_cifar_checkpoints(name, file, lo):
    root = config.data_root()
    path = root / "cifar10_resnet_checkpoints" / file
    if not path.is_file():
        pytest.skip(f"{path} absent (real data for the 'real' preset)")
    torch.set_num_threads(2)
    x, y = _cifar_jpegs(root, 30)  # 300 images; README: ~81% (r20) / ~83% (r56) on the JPEGs
    model = real.real_classifier(name, path, num_classes=10).eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert lo <= acc <= 0.92


# ---------------------------------------------------------------- captum_safe
def _deeplift_delta(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    target = torch.arange(len(x)) % model.head.out_features
    _, delta = DeepLift(model).attribute(
        x, baselines=torch.zeros_like(x), target=target, return_convergence_delta=True
    )
    return delta


def test_captum_safe_deeplift_conserves_on_tiny_resnet(tiny_resnet, tiny_images):
    before = {k: v.clone() for k, v in tiny_resnet.state_dict().items()}
    relu_before = [m for m in tiny_resnet.modules() if isinstance(m, nn.ReLU)]
    s = safe.captum_safe(tiny_resnet)
    assert max(safe.relu_calls(tiny_resnet, tiny_images).values()) == 2  # BasicBlock reuses self.relu
    assert max(safe.relu_calls(s, tiny_images).values()) == 1
    with torch.no_grad():
        torch.testing.assert_close(s(tiny_images), tiny_resnet(tiny_images), rtol=0, atol=0)
    assert _deeplift_delta(s, tiny_images).abs().max() < 1e-4
    # the original is untouched: same weights, same classes, same ReLU modules and forward
    assert all(torch.equal(v, tiny_resnet.state_dict()[k]) for k, v in before.items())
    assert all(type(b) is BasicBlock for b in tiny_resnet.modules() if isinstance(b, BasicBlock))
    assert [m for m in tiny_resnet.modules() if isinstance(m, nn.ReLU)] == relu_before
    assert set(s.state_dict()) == set(before)


def test_captum_safe_is_needed(tiny_resnet, tiny_images):
    """Without captum_safe, captum's DeepLift refuses the reused ReLU of torchvision's BasicBlock."""
    with pytest.raises(RuntimeError, match="more than once"):
        _deeplift_delta(tiny_resnet, tiny_images)


def test_captum_safe_small_resnet_and_inplace_relu():
    torch.manual_seed(0)
    model = _randomise_bn(small.SmallResNet(4, depth=8, width=4)).double().eval()
    shared = nn.ReLU(inplace=True)
    model.stem[2] = shared  # an in-place ReLU, registered twice
    model.extra = shared
    s = safe.captum_safe(model)
    x = torch.rand(5, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert not any(m.inplace for m in s.modules() if isinstance(m, nn.ReLU))
    assert s.stem[2] is not s.extra and model.stem[2] is model.extra and model.stem[2].inplace
    with torch.no_grad():
        torch.testing.assert_close(s(x), model(x), rtol=0, atol=0)
    assert _deeplift_delta(s, x).abs().max() < 1e-4


@pytest.mark.parametrize(
    "name", ["resnet50", "cifar_resnet20", pytest.param("inception_v3", marks=pytest.mark.slow)]
)
def test_captum_safe_real_architectures(name):
    torch.manual_seed(0)
    model = _randomise_bn(models.build(name, 3)).double().eval()
    s = _input_size(name)
    x = torch.rand(2, 3, s, s, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sm = safe.captum_safe(model)
    assert max(safe.relu_calls(sm, x).values()) == 1
    assert not any(m.inplace for m in sm.modules() if isinstance(m, nn.ReLU))
    with torch.no_grad():
        torch.testing.assert_close(sm(x), model(x), rtol=0, atol=0)
    if name == "inception_v3":  # functional max/avg pooling inside its blocks: no conservation to check
        return
    if name == "resnet50":  # captum's MaxPool rule does not conserve; that is not a ReLU matter
        sm.net.maxpool = nn.Identity()
    assert _deeplift_delta(sm, x).abs().max() < 1e-4


def test_gaia_backbones_have_the_authors_keys_and_blocks():
    """The GAIA / S&I authors' CIFAR nets, key for key (networks/resnet.py, networks/wresnet.py)."""
    import torch.nn.functional as F

    from xai_utils.models import gaia_nets

    wrn, r34 = models.build("wrn40_2", 100), models.build("gaia_resnet34", 100)
    keys = set(wrn.state_dict())
    assert {"conv1.weight", "block1.layer.0.convShortcut.weight", "block3.layer.5.conv2.weight", "bn1.running_var",
            "fc.bias"} <= keys and "block1.layer.1.convShortcut.weight" not in keys
    assert sum(k.endswith("convShortcut.weight") for k in keys) == 3
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in wrn.modules()) == 37
    keys = set(r34.state_dict())
    assert {"layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.running_mean", "layer4.2.bn2.weight",
            "linear.weight"} <= keys and "layer1.0.shortcut.0.weight" not in keys
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in r34.modules()) == 36
    # a pre-activation block: x + conv2(relu(bn2(conv1(relu(bn1(x)))))), the 1x1 shortcut on the activated input
    torch.manual_seed(0)
    for cin, cout, stride in ((8, 8, 1), (8, 16, 2)):
        b = gaia_nets.WideBlock(cin, cout, stride).eval()
        x = torch.randn(2, cin, 8, 8)
        act = F.relu(b.bn1(x))
        ref = b.conv2(F.relu(b.bn2(b.conv1(act)))) + (x if cin == cout else b.convShortcut(act))
        torch.testing.assert_close(b(x), ref)
    with pytest.raises(ValueError, match="6n\\+4"):
        gaia_nets.WideResNet(depth=30)


def _bit_keys(blocks) -> set[str]:
    """The state-dict keys of the authors' ResNetV2 (networks/resnetv2.py), written out from its layout."""
    keys = {"root.conv.weight", "before_head.gn.weight", "before_head.gn.bias", "head.conv.weight", "head.conv.bias"}
    for b, n in enumerate(blocks, 1):
        for u in range(1, n + 1):
            unit = f"body.block{b}.unit{u:02d}"
            keys |= {f"{unit}.{layer}.{p}" for layer in ("gn1", "gn2", "gn3") for p in ("weight", "bias")}
            keys |= {f"{unit}.conv{i}.weight" for i in (1, 2, 3)}
            if u == 1:  # every stage's first unit changes the width (block1: 64 -> 256) or the stride
                keys.add(f"{unit}.downsample.weight")
    return keys


def test_bit_loads_the_authors_checkpoint_layout(tmp_path, save_bit_as_the_authors):
    """BiT-S ResNet-v2 key for key with the authors' checkpoint ({"model": {"module.*"}}, a 1x1-conv head), the
    head becoming a linear layer; weight-standardised convolutions."""
    import torch.nn.functional as F

    from xai_utils.models import bit

    torch.manual_seed(0)
    blocks = (1, 2, 1, 1)
    src = bit.BiTResNetV2(blocks, 1, 5).eval()
    for m in src.modules():  # GroupNorm affine parameters away from (1, 0) so that a mix-up would show
        if isinstance(m, nn.GroupNorm):
            nn.init.normal_(m.weight, 1.0, 0.2), nn.init.normal_(m.bias, 0.0, 0.2)
    theirs = save_bit_as_the_authors(src, tmp_path / "BiT-S-R101x1.pth.tar", step=1)
    assert set(theirs) == _bit_keys(blocks)
    dst = real.load_checkpoint(bit.BiTResNetV2(blocks, 1, 5), tmp_path / "BiT-S-R101x1.pth.tar").eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x))
        conv = dst.root.conv
        w = conv.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / w.var((1, 2, 3), unbiased=False, keepdim=True).add(1e-10).sqrt()
        torch.testing.assert_close(conv(x), F.conv2d(x, w, None, 2, 3))
    r101 = models.build("bit_s_r101x1", 1000)
    assert sum(isinstance(m, nn.GroupNorm) for m in r101.modules()) == 3 * (3 + 4 + 23 + 3) + 1
    assert len(r101.split_points) == 10 and len(r101.gaia_a_layers) == 9  # the authors' 10 splits, 9 GroupNorms
