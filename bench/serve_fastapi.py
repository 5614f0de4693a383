"""What users build instead of a model server: FastAPI under uvicorn, the baseline of
bench/bench_serve.py.

Each of uvicorn's worker processes loads every model with torch.jit.load when it imports
this module, and serves

  POST /predictions/{name}
      a JSON body: a (nested) list -> torch.tensor -> model -> the output as a JSON list;
      an image body (Content-Type image/...): TorchServe's image_classifier steps (resize
      256, centre crop 224, ImageNet normalisation, softmax, top 5 as {"class": p});
  GET /ping -> {"status": "Healthy"}.

As typical user code has it: one request per forward pass (no batching), an `async def`
endpoint (the model runs on the worker's event loop, so a worker serves one request at a
time), no pinning, torch's default thread count.  One addition for the benchmark: the
header X-Handler-Us, the microseconds from the body to the answer (parse, model, encode),
so that the front end's own cost can be measured as with pinfer's Pinfer-Handler-Us.

    SERVE_FASTAPI_MODELS=identity=/tmp/m/identity.pt,resnet18=/tmp/m/resnet18.pt \\
        /usr/bin/python3 -m uvicorn --app-dir bench serve_fastapi:app \\
        --host 127.0.0.1 --port 8080 --workers 2
"""
import io
import json
import os
import time

import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse


def load_models(spec):
    """{name: TorchScript module} of "NAME=FILE,NAME=FILE"."""
    models = {}
    for item in filter(None, spec.split(",")):
        name, _, path = item.partition("=")
        models[name] = torch.jit.load(path, map_location="cpu").eval()
    return models


MODELS = load_models(os.environ.get("SERVE_FASTAPI_MODELS", ""))
_transform = None

app = FastAPI()


def image_tensor(body):
    """An image's bytes as the model's input (1, 3, 224, 224), as TorchServe's
    image_classifier prepares it."""
    global _transform
    from PIL import Image
    from torchvision import transforms
    if _transform is None:
        _transform = transforms.Compose([
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ])
    image = Image.open(io.BytesIO(body)).convert("RGB")
    return _transform(image).unsqueeze(0)


def top5(logits):
    probabilities = torch.nn.functional.softmax(logits, dim=1)
    probs, classes = torch.topk(probabilities, 5, dim=1)
    return {str(c): p for c, p in zip(classes[0].tolist(), probs[0].tolist())}


@app.get("/ping")
async def ping():
    return {"status": "Healthy"}


@app.post("/predictions/{name}")
async def predict(name: str, request: Request):
    model = MODELS.get(name)
    if model is None:
        raise HTTPException(status_code=404, detail="no model %r" % name)
    body = await request.body()
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            if request.headers.get("content-type", "").startswith("image/"):
                result = top5(model(image_tensor(body)))
            else:
                result = model(torch.tensor(json.loads(body))).tolist()
    except Exception as error:  # noqa: BLE001 - a bad input is the client's error
        raise HTTPException(status_code=400, detail=str(error))
    response = JSONResponse(result)  # encodes the body now
    response.headers["X-Handler-Us"] = str(int((time.perf_counter() - start) * 1e6))
    return response
