"""pinfer's IPEX front end (python/pinfer/frontend.py): ``optimize`` and the switches.

Agreement with the original model (fp32: torch.allclose rtol 1e-4 atol 1e-5; bf16: 2e-2
relative on the output's norm) for a small conv-bn-relu net, torchvision's resnet18
(random weights, random batch-norm statistics so that folding changes the numbers, 64x64
inputs) and an MLP, eager and traced, with and without sample_input; the eval-mode error;
training's (model, optimizer); inplace; one warning for unknown keywords; the path of a
CPU without bf16 ISA (feature detection monkeypatched); the switches; the snippets of IPEX's
documentation with ``import pinfer as ipex``; and ``pinfer serve`` with ipex_enable=true.
"""
import json
import warnings

import pytest

from conftest import import_pinfer

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

ipex = import_pinfer()  # as IPEX scripts call it
frontend = ipex.frontend

FP32 = dict(rtol=1e-4, atol=1e-5)
BF16_TOLERANCE = 2e-2


def relative(a, b):
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm()).item()


def randomise_bn(model):
    """Batch-norm statistics and affine parameters far from the identity, so that a wrong
    folding shows in the outputs."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model


class ConvBnRelu(torch.nn.Module):
    """Conv, BN, ReLU twice with a residual: the folding needs the data flow (fx), not the
    order of the children."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(8)  # registered before bn1 on purpose
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU()
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                        torch.nn.Dropout(0.5), torch.nn.Linear(8, 5))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        return self.head(self.relu(self.bn2(self.conv2(y)) + y))


def make(kind):
    """(model in eval mode, input)."""
    torch.manual_seed(0)
    if kind == "convbnrelu":
        return randomise_bn(ConvBnRelu()).eval(), torch.randn(2, 3, 16, 16)
    if kind == "resnet18":
        model = torchvision.models.resnet18(weights=None, num_classes=10)
        return randomise_bn(model).eval(), torch.randn(2, 3, 64, 64)
    if kind == "mlp":
        model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(),
                                    torch.nn.Dropout(0.1), torch.nn.LayerNorm(64),
                                    torch.nn.Linear(64, 10))
        return model.eval(), torch.randn(4, 32)
    raise AssertionError(kind)


def quiet_optimize(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", frontend.FrontendWarning)
        return ipex.optimize(*args, **kwargs)


KINDS = ["convbnrelu", "resnet18", "mlp"]


# ---------------------------------------------------------------------------
# Agreement


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("form", ["eager", "eager+sample_input", "traced"])
def test_fp32_agrees_with_the_original(kind, form):
    model, x = make(kind)
    with torch.no_grad():
        expected = model(x)
        if form == "traced":
            given = torch.jit.trace(model, x)
            optimized = ipex.optimize(given)
            assert isinstance(optimized, torch.jit.ScriptModule)
        elif form == "eager":
            optimized = ipex.optimize(model)
            assert type(optimized) is type(model)  # the model keeps its class
        else:
            optimized = ipex.optimize(model, sample_input=x)
            assert isinstance(optimized, torch.jit.ScriptModule)
        for _ in range(2):
            got = optimized(x)
            assert got.dtype == torch.float32
            assert torch.allclose(got, expected, **FP32), (got - expected).abs().max()


@pytest.mark.skipif(not frontend.bf16_isa(), reason="the CPU has neither AVX512_BF16 nor AMX")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("form", ["eager", "eager+sample_input", "autocast"])
def test_bf16_agrees_with_the_original(kind, form):
    model, x = make(kind)
    with torch.no_grad():
        expected = model(x)
        optimized = ipex.optimize(model, dtype=torch.bfloat16,
                                  sample_input=x if form == "eager+sample_input" else None)
        if form != "eager+sample_input":
            assert all(p.dtype == torch.bfloat16 for p in optimized.parameters())
        if form == "autocast":
            with torch.cpu.amp.autocast():
                got = optimized(x)
        else:
            got = optimized(x)  # fp32 input: cast by the model
        assert got.dtype == torch.bfloat16
        assert relative(got, expected) < BF16_TOLERANCE


def test_folding_keeps_the_module_tree_and_removes_the_batch_norms():
    model, x = make("resnet18")
    optimized = ipex.optimize(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in optimized.modules())
    assert isinstance(optimized.bn1, torch.nn.Identity)
    assert optimized.layer1[0].conv1.bias is not None  # the folded BN's shift
    assert optimized.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    # Every convolution runs oneDNN's kernel (stock PyTorch's heuristic would send small ones
    # to im2col + BLAS), still a Conv2d for isinstance().
    assert type(optimized.conv1).__name__ == "_OneDNNConv2d"
    assert isinstance(optimized.conv1, torch.nn.Conv2d)
    # A container fx cannot trace: folding falls back to plain Sequential neighbours.

    class Untraceable(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: fx refuses it
                return self.body(x)
            return self.body(-x)

    model = randomise_bn(Untraceable()).eval()
    x = torch.randn(1, 3, 8, 8)
    optimized = ipex.optimize(model)
    assert isinstance(optimized.body[1], torch.nn.Identity)
    assert torch.allclose(optimized(x), model(x), **FP32)


# ---------------------------------------------------------------------------
# Modes, copies, warnings


def test_a_model_in_train_mode_without_optimizer_is_refused():
    model, _ = make("convbnrelu")
    model.train()
    with pytest.raises(AssertionError, match="eval mode"):
        ipex.optimize(model)
    with pytest.raises(RuntimeError, match="The optimizer should be given for training mode"):
        ipex.optimize(model)
    model.eval()
    with pytest.raises(AssertionError, match="should not be given for inference mode"):
        ipex.optimize(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(RuntimeError, match="Unexpected optimization level"):
        ipex.optimize(model, level="O3")


def test_training_returns_the_model_and_its_optimizer():
    model, x = make("convbnrelu")
    model.train()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    out = ipex.optimize(model, optimizer=optimizer)
    assert isinstance(out, tuple) and len(out) == 2
    m, opt = out
    assert m is not model and opt is not optimizer
    assert isinstance(m.bn1, torch.nn.BatchNorm2d) and m.training  # no folding in training
    assert m.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    params = {id(p) for p in m.parameters()}
    assert all(id(p) in params for g in opt.param_groups for p in g["params"])
    loss = m(x).sum()
    loss.backward()
    opt.step()
    assert not torch.equal(m.conv1.weight, original["conv1.weight"])  # the step moved it
    for k, v in model.state_dict().items():  # the caller's model did not move
        assert torch.equal(v, original[k]), k


def test_inplace():
    model, x = make("convbnrelu")
    kept = ipex.optimize(model)
    assert isinstance(model.bn1, torch.nn.BatchNorm2d)  # inplace=False: untouched
    assert kept is not model
    same = ipex.optimize(model, inplace=True)
    assert same is model and isinstance(model.bn1, torch.nn.Identity)
    assert torch.allclose(same(x), kept(x), **FP32)


def test_unknown_keywords_give_one_warning_naming_them():
    model, _ = make("mlp")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ipex.optimize(model, weights_prepack=False, auto_kernel_selection=True,
                      deployment_mode=True, fancy_new_flag=1, another=2)
    ours = [w for w in caught if issubclass(w.category, frontend.FrontendWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    text = str(ours[0].message)
    assert "another" in text and "fancy_new_flag" in text
    assert "weights_prepack" not in text and "deployment_mode" not in text


def test_without_bf16_isa_the_model_stays_fp32_with_one_warning(monkeypatch):
    monkeypatch.setattr(frontend, "_cpu_features", lambda: {"avx2", "fma", "avx512f"})
    monkeypatch.setitem(frontend._state, "warned_isa", False)
    model, x = make("convbnrelu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = ipex.optimize(model, dtype=torch.bfloat16)
        second = ipex.optimize(model, dtype=torch.bfloat16, sample_input=x)
    ours = [str(w.message) for w in caught if issubclass(w.category, frontend.FrontendWarning)]
    assert len(ours) == 1, ours
    assert "avx512_bf16" in ours[0] and "amx_bf16" in ours[0] and "fp32" in ours[0]
    assert all(p.dtype == torch.float32 for p in first.parameters())
    with torch.no_grad():
        assert torch.allclose(first(x), model(x), **FP32)
        assert second(x).dtype == torch.float32


def test_a_torchscript_model_is_frozen_and_bf16_is_not_applied_to_it():
    model, x = make("convbnrelu")
    scripted = torch.jit.script(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frozen = ipex.optimize(scripted, dtype=torch.bfloat16)
    assert any("dtype cannot be changed" in str(w.message) for w in caught)
    assert not list(frozen.parameters())  # frozen: the weights are constants
    with torch.no_grad():
        assert torch.allclose(frozen(x), model(x), **FP32)
    scripted.train()
    opt = torch.optim.SGD(scripted.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ipex.optimize(scripted, optimizer=opt) == (scripted, opt)


# ---------------------------------------------------------------------------
# Switches


def test_switches():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ipex.enable_onednn_fusion(True)
    try:
        # On or a warning: a torch built without oneDNN Graph ignores the flag (Debian's).
        assert torch.jit.onednn_fusion_enabled() or \
            any("no oneDNN Graph" in str(w.message) for w in caught)
    finally:
        ipex.enable_onednn_fusion(False)
    assert not torch.jit.onednn_fusion_enabled()

    assert ipex.get_fp32_math_mode() == ipex.FP32MathMode.FP32
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ipex.set_fp32_math_mode(mode=ipex.FP32MathMode.BF32, device="cpu")
    try:
        assert ipex.get_fp32_math_mode() == ipex.FP32MathMode.BF32
        if torch.__version__.startswith("1."):
            assert any("bf32" in str(w.message) for w in caught)
    finally:
        ipex.set_fp32_math_mode(ipex.FP32MathMode.FP32)
    assert ipex.get_fp32_math_mode() == ipex.FP32MathMode.FP32
    assert torch.get_float32_matmul_precision() == "highest"

    model, x = make("convbnrelu")
    ipex.disable_auto_channels_last()
    try:
        kept = ipex.optimize(model)
        assert kept.conv1.weight.is_contiguous()
        assert not kept.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    finally:
        ipex.enable_auto_channels_last()
    assert ipex.optimize(model).conv1.weight.is_contiguous(memory_format=torch.channels_last)

    assert ipex.set_verbose(0) is True
    with ipex.verbose(0):
        pass


def test_onednn_verbose_shows_a_conv(capfd):
    """set_verbose(1) makes oneDNN print one line per primitive it runs (what
    docs/python.md quotes to show the ISA used)."""
    model, x = make("convbnrelu")
    optimized = ipex.optimize(model)
    with torch.no_grad():
        optimized(x)
        capfd.readouterr()
        assert ipex.set_verbose(1)
        try:
            optimized(x)
        finally:
            ipex.set_verbose(0)
    out = capfd.readouterr().out
    assert "onednn_verbose" in out or "dnnl_verbose" in out, out[-2000:]
    assert "convolution" in out


# ---------------------------------------------------------------------------
# IPEX's documented snippets, with `import pinfer as ipex`


def test_ipex_training_snippets():
    # "model, optimizer = ipex.optimize(model, optimizer=optimizer)" (fp32), then bf16 with
    # channels_last data under torch.cpu.amp.autocast().
    for dtype in (None, torch.bfloat16):
        model, _ = make("convbnrelu")
        model.train()
        criterion = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if dtype is None:
                model, optimizer = ipex.optimize(model, optimizer=optimizer)
            else:
                model, optimizer = ipex.optimize(model, optimizer=optimizer, dtype=dtype)
        ours = [str(w.message) for w in caught
                if issubclass(w.category, frontend.FrontendWarning)]
        if dtype is None:
            assert not ours
        else:
            assert len(ours) == 1 and "torch.cpu.amp.autocast" in ours[0]
            assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights
        data = torch.randn(4, 3, 16, 16).to(memory_format=torch.channels_last)
        target = torch.tensor([0, 1, 2, 3])
        before = model.conv1.weight.detach().clone()
        optimizer.zero_grad()
        if dtype is None:
            loss = criterion(model(data), target)
        else:
            with torch.cpu.amp.autocast():
                output = model(data)
                assert output.dtype == torch.bfloat16
                loss = criterion(output, target)
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
        assert not torch.equal(model.conv1.weight, before)


def test_ipex_amp_inference_snippet():
    # model = ipex.optimize(model, dtype=torch.bfloat16)
    # with torch.no_grad(), torch.cpu.amp.autocast(): y = model(x)
    model, x = make("resnet18")
    with torch.no_grad():
        expected = model(x)
        model = quiet_optimize(model, dtype=torch.bfloat16)
        with torch.cpu.amp.autocast():
            y = model(x)
    assert relative(y, expected) < (BF16_TOLERANCE if frontend.bf16_isa() else 1e-5)


# ---------------------------------------------------------------------------
# pinfer serve with ipex_enable=true


def test_serve_loads_the_image_classifier_through_optimize(tmp_path):
    """The built-in image_classifier with an eager model (modelFile + state dict): its
    BaseHandler.initialize applies pinfer.optimize when ipex_enable is set."""
    from pinfer.serve import handlers, models
    folder = tmp_path / "img"
    (folder / "MAR-INF").mkdir(parents=True)
    (folder / "model.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(3, 4, 3)\n"
        "        self.bn = torch.nn.BatchNorm2d(4)\n"
        "        self.pool = torch.nn.AdaptiveAvgPool2d(1)\n"
        "    def forward(self, x):\n"
        "        return self.pool(self.bn(self.conv(x))).flatten(1)\n")
    torch.manual_seed(0)
    state = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.randn(4),
             "bn.weight": torch.rand(4) + 0.5, "bn.bias": torch.randn(4),
             "bn.running_mean": torch.randn(4), "bn.running_var": torch.rand(4) + 0.5,
             "bn.num_batches_tracked": torch.tensor(0)}
    torch.save(state, str(folder / "net.pt"))
    (folder / "MAR-INF" / "MANIFEST.json").write_text(json.dumps(
        {"model": {"modelName": "img", "serializedFile": "net.pt", "modelFile": "model.py",
                   "handler": "image_classifier"}}))
    plain = models.resolve({"path": str(folder)})
    service, _ = handlers.load_service(plain)
    spec = models.resolve({"path": str(folder), "ipex_enable": True})
    optimized, _ = handlers.load_service(spec)
    assert isinstance(service.handler.model.bn, torch.nn.BatchNorm2d)
    assert isinstance(optimized.handler.model.bn, torch.nn.Identity)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(optimized.handler.inference(x), service.handler.inference(x),
                              **FP32)


def test_serve_with_ipex_enable_runs_an_optimized_torchscript_model(tmp_path):
    """`pinfer serve --ts-config config.properties` (ipex_enable=true) with a traced
    conv-bn-relu model: the worker freezes it through pinfer.optimize and answers as the
    plain model does."""
    requests = pytest.importorskip("requests")
    from test_serve import Server
    store = tmp_path / "store"
    store.mkdir()
    model, x = make("convbnrelu")
    torch.jit.save(torch.jit.trace(model, x), str(store / "cbr.pt"))
    config = tmp_path / "config.properties"
    config.write_text("ipex_enable=true\ndefault_workers_per_model=1\n")
    folder = tmp_path / "server"
    folder.mkdir()
    server = Server(folder, store, ["--ts-config", str(config), "--models", "cbr=cbr.pt",
                                    "--workers", "1"])
    try:
        server.ready_workers("cbr", 1)
        r = requests.post(server.url("/predictions/cbr"), json=x.tolist(), timeout=60)
        assert r.status_code == 200, r.text
        got = torch.tensor(r.json())
        with torch.no_grad():
            expected = model(x)
        assert torch.allclose(got, expected, **FP32), (got - expected).abs().max()
        server.stop()
    finally:
        if not server.stopped:
            server.kill()
    text = server.stderr()
    assert "ipex_enable: pinfer.optimize applied to the TorchScript model" in text, text
