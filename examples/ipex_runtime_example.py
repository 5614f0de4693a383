"""IPEX's Runtime Extension examples, run on stock PyTorch with pinfer.

The code below is the Runtime Extension document's (ExampleNet1/2, examples 1-3
of MultiStreamModule, the asynchronous Task, pin) written as IPEX code, and the
only line changed is the import:

    -import intel_extension_for_pytorch as ipex
    +import pinfer as ipex

(The document's fixed core lists, [0, 1, 2, 3] and [4, 5, 6, 7], assume an
8-core node 0; here the two Task pools are the halves of node 0's cores, with
IPEX's own get_core_list_of_node_id, so that the example runs anywhere.)  Each
result is compared with the plain model's.

    PYTHONPATH=python /usr/bin/python3 examples/ipex_runtime_example.py
"""
import torch
import pinfer as ipex  # was: import intel_extension_for_pytorch as ipex


class ExampleNet1(torch.nn.Module):
    def __init__(self):
        super(ExampleNet1, self).__init__()
        self.conv = torch.nn.Conv2d(64, 128, (3, 3), stride=(2, 2), padding=(1, 1), bias=False)

    def forward(self, x):
        x1 = self.conv(x)
        y = torch.flatten(x1, start_dim=1)
        return y


class ExampleNet2(torch.nn.Module):
    def __init__(self):
        super(ExampleNet2, self).__init__()
        self.conv = torch.nn.Conv2d(64, 128, (3, 3), stride=(2, 2), padding=(1, 1), bias=False)
        self.conv2 = torch.nn.Conv2d(64, 128, (3, 3), stride=(2, 2), padding=(1, 1), bias=False)

    def forward(self, x1, x2):
        y1 = self.conv(x1)
        y2 = self.conv2(x2)
        y = torch.flatten(y1, start_dim=1)
        return y1, y


def check(name, got, want):
    """Print whether the runtime's result equals the plain model's."""
    if isinstance(want, tuple):
        same = all(torch.allclose(g, w, atol=1e-5) for g, w in zip(got, want))
    else:
        same = torch.allclose(got, want, atol=1e-5)
    print("%-40s %s" % (name, "same as the plain model" if same else "DIFFERENT"))
    if not same:
        raise SystemExit(1)


model1 = ExampleNet1()
model1.eval()
x = torch.rand(16, 64, 3, 3)

with torch.no_grad():
    traced_model1 = torch.jit.trace(model1, x)
    traced_model1 = torch.jit.freeze(traced_model1)

model2 = ExampleNet2()
model2.eval()
x2 = torch.rand(16, 64, 3, 3)

with torch.no_grad():
    traced_model2 = torch.jit.trace(model2, (x, x2))
    traced_model2 = torch.jit.freeze(traced_model2)

with torch.no_grad():
    expected1 = model1(x)
    expected2 = model2(x, x2)

# Example 1: basic usage
cpu_pool = ipex.cpu.runtime.CPUPool(node_id=0)
multi_Stream_model = ipex.cpu.runtime.MultiStreamModule(traced_model1, num_streams=2,
                                                        cpu_pool=cpu_pool)
with torch.no_grad():
    y = multi_Stream_model(x)
check("MultiStreamModule, 2 streams", y, expected1)

# Example 2: "AUTO" streams and the default pool
multi_Stream_model = ipex.cpu.runtime.MultiStreamModule(traced_model1)
with torch.no_grad():
    y = multi_Stream_model(x)
check("MultiStreamModule, AUTO", y, expected1)

# Example 3: structured inputs and outputs
cpu_pool = ipex.cpu.runtime.CPUPool(node_id=0)
input_hint = ipex.cpu.runtime.MultiStreamModuleHint(0, 0)
output_hint = ipex.cpu.runtime.MultiStreamModuleHint((0, 0))
multi_Stream_model = ipex.cpu.runtime.MultiStreamModule(traced_model2,
                                                        num_streams=2,
                                                        cpu_pool=cpu_pool,
                                                        input_split_hint=input_hint,
                                                        output_concat_hint=output_hint)
with torch.no_grad():
    y = multi_Stream_model(x, x2)
check("MultiStreamModule, tuple in and out", y, expected2)

# Asynchronous tasks, one pool each
cores = ipex.cpu.runtime.get_core_list_of_node_id(0)
half = max(1, len(cores) // 2)
cpu_pool1 = ipex.cpu.runtime.CPUPool(cores[:half])
cpu_pool2 = ipex.cpu.runtime.CPUPool(cores[half:] or cores[:half])

task1 = ipex.cpu.runtime.Task(traced_model1, cpu_pool1)
task2 = ipex.cpu.runtime.Task(traced_model1, cpu_pool2)

y1_future = task1(x)
y2_future = task2(x)

y1 = y1_future.get()
y2 = y2_future.get()
check("Task on %s" % cpu_pool1.core_ids, y1, expected1)
check("Task on %s" % cpu_pool2.core_ids, y2, expected1)

# Core binding with pin
cpu_pool = ipex.cpu.runtime.CPUPool(node_id=0)
with ipex.cpu.runtime.pin(cpu_pool):
    y_runtime = traced_model1(x)
check("pin", y_runtime, expected1)

print("runtime extension enabled:", ipex.cpu.runtime.is_runtime_ext_enabled())
