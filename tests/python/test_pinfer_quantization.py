"""pinfer.quantization: IPEX's INT8 API (prepare, calibrate, convert) on torch.ao.

Top-1 agreement of int8 with fp32 on seeded data: inputs are a class prototype plus noise
(calibration and test batches from the same distribution), so that the fp32 net's top-1
is mostly decided by the class and means something; a conv net (Conv+BN+ReLU, pooling,
Linear) and an MLP, static; the MLP and an LSTM model dynamic. A torchvision ResNet-18
(random weights, 64x64) static int8, traced, frozen, saved, loaded: the same outputs.
The errors (train mode, configuration types, IPEX 1.x's names), inplace semantics, the
fp32-layers warning (exactly once, naming the layer), FX's fallback for an untraceable
model. Then IPEX's TorchServe INT8 flow with `import pinfer as ipex`, the saved
`rn_int8_jit.pt` served by `pinfer serve` and its v2 answer compared with the model run
here. About 10 s on 2 CPUs, most of it in ResNet-18's calibration and the server.
"""
import os
import warnings

import pytest

from conftest import import_pinfer

torch = pytest.importorskip("torch")
nn = torch.nn

ipex = import_pinfer()  # the package under IPEX's name, as the scripts use it
quant = ipex.quantization


# ---------------------------------------------------------------------------
# Models and data


class ConvNet(nn.Module):
    """Conv+BN+ReLU twice, max and average pooling, a Linear head; BN statistics that
    are not the identity, so that folding them matters."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(32, classes)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def mlp(features=32, classes=10):
    return nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, classes))


class Prototypes(object):
    """Seeded samples: one of `count` fixed prototypes plus Gaussian noise."""

    def __init__(self, shape, count=10, noise=0.5, seed=0):
        self.gen = torch.Generator().manual_seed(seed)
        self.protos = torch.randn((count,) + tuple(shape), generator=self.gen)
        self.noise = noise

    def batch(self, n):
        which = torch.randint(0, len(self.protos), (n,), generator=self.gen)
        return self.protos[which] + self.noise * torch.randn(
            (n,) + tuple(self.protos.shape[1:]), generator=self.gen)


def agreement(a, b):
    return (a.argmax(1) == b.argmax(1)).float().mean().item()


def quantize_static(model, data, batches=8, size=32, **kw):
    example = data.batch(2)
    prepared = quant.prepare(model, quant.default_static_qconfig, example_inputs=example, **kw)
    with torch.no_grad():
        for _ in range(batches):
            prepared(data.batch(size))
    return prepared


def quantized_types(model):
    """The printed names of the model's quantized modules (QuantizedLinear,
    DynamicQuantizedLinear, ...)."""
    return {m._get_name() for m in model.modules() if ".quantized" in type(m).__module__}


def fp32_warnings(record):
    return [w for w in record if issubclass(w.category, quant.Fp32LayersWarning)]


# ---------------------------------------------------------------------------
# Accuracy


def test_backend_and_default_configurations():
    name = quant.backend()
    assert name in torch.backends.quantized.supported_engines
    assert name in ("x86", "fbgemm", "onednn", "qnnpack")
    assert isinstance(quant.default_static_qconfig, torch.ao.quantization.QConfig)
    assert isinstance(quant.default_dynamic_qconfig, torch.ao.quantization.QConfig)
    assert isinstance(quant.default_static_qconfig_mapping,
                      torch.ao.quantization.QConfigMapping)
    torch.manual_seed(0)
    quant.prepare(mlp().eval(), quant.default_static_qconfig, torch.randn(2, 32))
    assert torch.backends.quantized.engine == name


def test_conv_net_static_top1_agrees():
    torch.manual_seed(1)
    model = ConvNet().eval()
    data = Prototypes((3, 16, 16), seed=1)
    prepared = quantize_static(model, data)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        int8 = quant.convert(prepared)
    assert not fp32_warnings(record), [str(w.message) for w in record]
    assert {"QuantizedConvReLU2d", "QuantizedLinear"} <= quantized_types(int8)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in int8.modules())  # folded
    x = data.batch(256)
    with torch.no_grad():
        ref, out = model(x), int8(x)
    assert agreement(ref, out) >= 0.9, agreement(ref, out)
    assert (ref - out).abs().max() < 0.1 * ref.abs().max()


def test_mlp_static_top1_agrees_and_configuration_forms():
    torch.manual_seed(2)
    model = mlp().eval()
    data = Prototypes((32,), seed=2)
    x = data.batch(256)
    with torch.no_grad():
        ref = model(x)
    qconfig = torch.ao.quantization.get_default_qconfig(quant.backend())
    forms = [quant.default_static_qconfig, quant.default_static_qconfig_mapping,
             qconfig,  # torch's own QConfig
             torch.ao.quantization.get_default_qconfig_mapping(quant.backend()),
             {"": qconfig}]  # the older qconfig_dict
    for form in forms:
        prepared = quant.prepare(model, form, example_inputs=data.batch(2))
        with torch.no_grad():
            for _ in range(8):
                prepared(data.batch(32))
            int8 = quant.convert(prepared)
            assert "QuantizedLinearReLU" in quantized_types(int8), form
            assert agreement(ref, int8(x)) >= 0.9, (form, agreement(ref, int8(x)))
    with pytest.raises(TypeError, match="QConfig"):
        quant.prepare(model, "int8")
    with pytest.raises(ValueError, match="quantizes nothing"):
        quant.prepare(model, torch.ao.quantization.QConfigMapping())


def test_mlp_dynamic():
    torch.manual_seed(3)
    model = mlp().eval()
    data = Prototypes((32,), seed=3)
    prepared = quant.prepare(model, quant.default_dynamic_qconfig, example_inputs=data.batch(2))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        int8 = quant.convert(prepared)  # no calibration: dynamic
    assert not fp32_warnings(record)
    linears = [m for m in int8.modules() if m._get_name() == "DynamicQuantizedLinear"]
    assert len(linears) == 3
    x = data.batch(256)
    with torch.no_grad():
        ref, out = model(x), int8(x)
    assert agreement(ref, out) >= 0.95
    assert torch.allclose(ref, out, atol=0.05 * ref.abs().max().item())
    # the mapping form, and an LSTM (dynamic int8 LSTM), traced afterwards
    lstm = LSTMNet().eval()
    seq = torch.randn(5, 3, 8)
    int8 = quant.convert(quant.prepare(lstm, quant.default_dynamic_qconfig_mapping, seq))
    assert {"DynamicQuantizedLSTM", "DynamicQuantizedLinear"} <= quantized_types(int8)
    with torch.no_grad():
        assert torch.allclose(lstm(seq), int8(seq), atol=0.05)


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, x):
        return self.out(self.lstm(x)[0])


# ---------------------------------------------------------------------------
# ResNet-18: trace, freeze, save, load


@pytest.fixture(scope="module")
def resnet_int8(tmp_path_factory):
    """IPEX's TorchServe INT8 flow on the current API, as docs/python.md writes it: a
    ResNet-18 (random weights, 64x64 inputs), calibrated, converted, traced, frozen and
    saved as rn_int8_jit.pt.  (model, converted, traced, path, example)"""
    torchvision = pytest.importorskip("torchvision")
    from pinfer.quantization import convert, prepare
    torch.manual_seed(4)
    data = torch.rand(1, 3, 64, 64)
    model = torchvision.models.resnet18(num_classes=1000).eval()
    qconfig = ipex.quantization.default_static_qconfig
    prepared_model = prepare(model, qconfig, example_inputs=data, inplace=False)
    with torch.no_grad():
        for _ in range(4):  # calibration_data_loader()
            prepared_model(torch.rand(4, 3, 64, 64))
    converted_model = convert(prepared_model)
    with torch.no_grad(), warnings.catch_warnings():
        # the quantize steps' scales become constants of the trace, as they should
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced_model = torch.jit.trace(converted_model, data)
        traced_model = torch.jit.freeze(traced_model)
    path = str(tmp_path_factory.mktemp("store") / "rn_int8_jit.pt")
    traced_model.save(path)
    return model, converted_model, traced_model, path, data


def test_resnet18_trace_freeze_save_load(resnet_int8):
    model, converted, traced, path, _ = resnet_int8
    kinds = quantized_types(converted)
    assert {"QuantizedConvReLU2d", "QuantizedConv2d", "QuantizedLinear"} <= kinds, kinds
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        before = converted(x)
        frozen = traced(x)
        loaded = torch.jit.load(path)(x)
        ref = model(x)
    assert torch.equal(frozen, before)
    assert torch.equal(loaded, frozen)
    # random weights: only that int8 follows fp32 (correlated logits), not top-1
    corr = torch.corrcoef(torch.stack([ref.flatten(), loaded.flatten()]))[0, 1]
    assert corr > 0.9, corr


# ---------------------------------------------------------------------------
# Errors, inplace, warnings, fallback


def test_train_mode_is_an_error():
    model = mlp()  # train mode
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        quant.prepare(model, quant.default_static_qconfig, torch.randn(2, 32))
    with pytest.raises(TypeError, match="nn.Module"):
        quant.prepare(lambda x: x, quant.default_static_qconfig)
    with pytest.raises(ValueError, match="not prepared"):
        quant.convert(mlp().eval())


def test_inplace_semantics():
    torch.manual_seed(6)
    data = Prototypes((32,), seed=6)
    x = data.batch(16)
    model = mlp().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        ref = model(x)
    # inplace=False: the model is untouched and shares nothing with the prepared one
    prepared = quantize_static(model, data)
    ids = {id(p) for p in model.parameters()}
    assert not ids & {id(p) for p in prepared.parameters()}
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    # convert(inplace=False) leaves the prepared model observing: it converts again alike
    first = quant.convert(prepared)
    observers = [m for m in prepared.modules() if "Observer" in type(m).__name__]
    assert observers
    second = quant.convert(prepared)
    with torch.no_grad():
        assert torch.equal(first(x), second(x))
        assert torch.equal(model(x), ref)
    # inplace=True: no copy; the prepared model holds the model's own parameters
    prepared = quant.prepare(model, quant.default_static_qconfig, x, inplace=True)
    assert ids & {id(p) for p in prepared.parameters()}
    with torch.no_grad():
        prepared(x)
        third = quant.convert(prepared, inplace=True)
        assert third(x).shape == ref.shape
    # the dynamic path alike
    other = mlp().eval()
    ids = {id(p) for p in other.parameters()}
    copied = quant.prepare(other, quant.default_dynamic_qconfig)
    assert copied is not other and not ids & {id(p) for p in copied.parameters()}
    assert quant.prepare(other, quant.default_dynamic_qconfig, inplace=True) is other


class WithEmbedding(nn.Module):
    """An Embedding (no static int8 form in torch.ao's default mapping) before a Linear."""

    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(20, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, ids):
        return self.fc(self.table(ids).mean(1))


def test_fp32_layers_warned_once():
    torch.manual_seed(7)
    model = WithEmbedding().eval()
    ids = torch.randint(0, 20, (8, 5))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        prepared = quant.prepare(model, quant.default_static_qconfig, ids)
        with torch.no_grad():
            prepared(ids)
            int8 = quant.convert(prepared)
            for _ in range(3):
                int8(ids)
            torch.jit.freeze(torch.jit.trace(int8, ids))(ids)
    found = fp32_warnings(record)
    assert len(found) == 1, [str(w.message) for w in record]
    message = str(found[0].message)
    assert "table (Embedding)" in message and "1 layer" in message, message
    assert "fc" not in message.split(":", 2)[-1]
    assert quant.fp32_layers(int8) == [("table", "Embedding")]
    assert found[0].filename == __file__  # points at the caller's convert()


class Branchy(nn.Module):
    """Data-dependent control flow: FX cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        y = self.conv(x).mean((2, 3))
        if y.sum() > 0:
            y = -y
        return self.fc(y)


def test_untraceable_model_falls_back_to_dynamic():
    torch.manual_seed(8)
    model = Branchy().eval()
    x = torch.randn(4, 3, 8, 8)
    with pytest.warns(quant.QuantizationFallbackWarning, match="control flow"):
        prepared = quant.prepare(model, quant.default_static_qconfig, x)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with torch.no_grad():
            prepared(x)
            int8 = quant.convert(prepared)
    found = fp32_warnings(record)
    assert len(found) == 1 and "conv (Conv2d)" in str(found[0].message)
    assert ".dynamic" in type(int8.fc).__module__
    assert isinstance(model.fc, nn.Linear) and type(model.fc).__module__.startswith("torch.nn.")
    with torch.no_grad():
        assert torch.allclose(model(x), int8(x), atol=0.05)


def test_ipex_1x_names_say_what_to_use():
    for name in ("QuantConf", "calibrate"):
        with pytest.raises(AttributeError, match="prepare"):
            getattr(ipex.quantization, name)
    assert not hasattr(ipex.quantization, "QuantConf")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ipex.quantization.nothing
    prepared = quant.prepare(mlp().eval(), quant.default_dynamic_qconfig)
    with pytest.raises(TypeError, match="prepare"):
        quant.convert(prepared, object(), torch.rand(1, 32))
    assert "quantization" in ipex.__all__


# ---------------------------------------------------------------------------
# TorchServe: serve the saved INT8 model


def test_serve_int8_model(resnet_int8, tmp_path):
    pytest.importorskip("requests")
    from test_serve import JSON, Server, v2_json, v2_outputs
    _, _, traced, path, _ = resnet_int8
    store = os.path.dirname(path)
    server = Server(tmp_path, store, ["--models", "rn=rn_int8_jit.pt", "--workers", "1",
                                      "--pinning", "none"])
    try:
        x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(9))
        with torch.no_grad():
            expected = traced(x)
        r = server.post("/v2/models/rn/infer", data=v2_json("input__0", "FP32", x),
                        headers=JSON)
        assert r.status_code == 200, r.text
        _, outputs = v2_outputs(r)
        got = outputs["output__0"]
        assert got.shape == (2, 1000)
        # the same int8 kernels on the same engine: equal up to float printing in JSON
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()
        assert torch.equal(got.argmax(1), expected.argmax(1))
    finally:
        server.stop()
