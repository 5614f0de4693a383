"""The model and the request `pinfer bench` serves when it is given none.

    python -m pinfer.serve.builtin --out DIR [--arch resnet18]
    python -m pinfer.serve.builtin --out DIR --model FILE --handler NAME
    python -m pinfer.serve.builtin --out DIR --input-only

writes into DIR a TorchServe archive (``.mar``: the TorchScript file and a
manifest naming the handler) and ``input.jpg``, and prints one line for each:
``model: FILE`` (relative to DIR) and ``input: PATH``.

The built-in model is torchvision's ARCH (ResNet-18 by default) with random
weights, traced with a 224x224 input and served by the ``image_classifier``
handler, so that the benchmark runs with nothing downloaded; the image is
a 224x224 JPEG made from a fixed seed, so every run sends the same bytes.
With ``--model`` a TorchScript file of the user's is archived with the
handler named instead.
"""

import argparse
import json
import os
import sys
import zipfile


def _archive(out, name, serialized, handler):
    """DIR/NAME.mar holding SERIALIZED (a path) and a manifest; its file name."""
    manifest = {"createdOn": "", "runtime": "python",
                "model": {"modelName": name, "modelVersion": "1.0",
                          "serializedFile": os.path.basename(serialized),
                          "handler": handler},
                "archiverVersion": "pinfer"}
    mar = name + ".mar"
    with zipfile.ZipFile(os.path.join(out, mar), "w", zipfile.ZIP_STORED) as z:
        z.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest, indent=2))
        z.write(serialized, os.path.basename(serialized))
    return mar


def _image(out):
    """DIR/input.jpg: 224x224, smooth colours with noise, the same bytes every time."""
    import numpy
    from PIL import Image
    rng = numpy.random.default_rng(20260401)
    y, x = numpy.mgrid[0:224, 0:224]
    rgb = numpy.stack([x, y, (x + y) // 2], axis=-1).astype(numpy.float64)
    rgb += rng.normal(0, 24, rgb.shape)
    path = os.path.join(out, "input.jpg")
    Image.fromarray(numpy.clip(rgb, 0, 255).astype(numpy.uint8)).save(
        path, format="JPEG", quality=90)
    return path


def _builtin(out, arch):
    import torch
    import torchvision
    builder = getattr(torchvision.models, arch, None)
    if not callable(builder) or arch.startswith("_"):
        raise SystemExit("pinfer.serve.builtin: error: torchvision has no model '%s'" % arch)
    torch.manual_seed(0)
    net = builder(weights=None).eval()
    pt = os.path.join(out, arch + ".pt")
    with torch.no_grad():
        torch.jit.trace(net, torch.rand(1, 3, 224, 224)).save(pt)
    mar = _archive(out, arch, pt, "image_classifier")
    os.unlink(pt)
    return mar


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinfer.serve.builtin",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the folder to write into (created)")
    parser.add_argument("--arch", default="resnet18", help="a torchvision model (resnet18)")
    parser.add_argument("--model", help="a TorchScript file to archive instead")
    parser.add_argument("--handler", help="its handler (with --model)")
    parser.add_argument("--input-only", action="store_true", help="only input.jpg")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.model:
        if not args.handler:
            parser.error("--model needs --handler")
        stem = os.path.basename(args.model).split(".")[0] or "model"
        name = "".join(c if c.isalnum() or c in "_.-" else "_" for c in stem)
        print("model: %s" % _archive(args.out, name, args.model, args.handler))
    elif not args.input_only:
        print("model: %s" % _builtin(args.out, args.arch))
    print("input: %s" % _image(args.out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
