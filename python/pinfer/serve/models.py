"""What a worker serves: a model found from its configuration, on disk.

Three forms, as TorchServe takes them:

- a TorchScript file (``torch.jit.load``), served by the tensor handler unless the
  configuration names another;
- a TorchServe model archive (``.mar``: a zip whose ``MAR-INF/MANIFEST.json`` names the
  model, its ``serializedFile``, ``handler``, optional ``modelFile``; extra files lie beside
  them), unpacked into a private folder first: no entry may leave that folder (``..``,
  absolute names, symbolic links and other special files are refused) and the unpacked
  bytes are limited (counted while unpacking, not taken from the archive's own claims);
- the same layout already unpacked in a folder (TorchServe's no-archive format).

Loading a model runs code it contains: TorchScript and state dicts are read by torch's
unpickler, the handler file and the model file are Python, and so may be what they import.
The front end only ever names files inside its model store.
"""
import importlib.util
import inspect
import json
import os
import shutil
import stat
import sys
import tempfile
import zipfile

MANIFEST = "MAR-INF/MANIFEST.json"
# The bytes an archive may unpack to, and its entries (the configuration may change both).
DEFAULT_MAX_UNPACKED = 16 << 30
DEFAULT_MAX_ENTRIES = 100000
CHUNK = 1 << 20


class ModelError(Exception):
    """The model cannot be loaded; str() is the one-line reason READY carries."""


# ---------------------------------------------------------------------------
# Archives


def _entry_parts(name):
    """The path components of a zip entry's name, or ModelError when the entry could leave
    the folder it is unpacked into (or is ambiguous about where it goes)."""
    if not name or "\x00" in name:
        raise ModelError("archive entry %r: an empty name or a NUL byte" % name)
    if "\\" in name:
        raise ModelError("archive entry %r: a backslash in the name" % name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ModelError("archive entry %r: an absolute name" % name)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ModelError("archive entry %r: a '..' component" % name)
    if not parts:
        raise ModelError("archive entry %r: no name" % name)
    return parts


def unpack_archive(path, dest, max_bytes=DEFAULT_MAX_UNPACKED, max_entries=DEFAULT_MAX_ENTRIES):
    """Unpack the zip archive `path` into the existing, empty folder `dest`.

    Every entry is checked before anything is written: a name with ``..``, an absolute
    name, a symbolic link or a special file (device, FIFO, socket), a name given twice,
    more than `max_entries` entries: ModelError, and `dest` is left empty.  Files are then
    written with O_EXCL|O_NOFOLLOW, mode 0600 (folders 0700), counting the bytes actually
    decompressed: more than `max_bytes` in all is a ModelError (the caller removes `dest`).
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelError("%s: not a readable zip archive (%s)" % (path, error)) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > max_entries:
            raise ModelError("%s: %d entries (the limit is %d)" % (path, len(infos), max_entries))
        seen, plan = set(), []
        for info in infos:
            parts = _entry_parts(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix mode recorded
            is_dir = info.filename.endswith("/") or kind == stat.S_IFDIR
            if kind == stat.S_IFLNK:
                raise ModelError("archive entry %r: a symbolic link" % info.filename)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ModelError("archive entry %r: not a regular file or a folder"
                                 % info.filename)
            key = tuple(parts)
            if key in seen and not is_dir:
                raise ModelError("archive entry %r: given twice" % info.filename)
            seen.add(key)
            plan.append((info, parts, is_dir))
        total = 0
        for info, parts, is_dir in plan:
            target = os.path.join(dest, *parts)
            folder = target if is_dir else os.path.dirname(target)
            _make_folders(dest, folder)
            if is_dir:
                continue
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                raise ModelError("archive entry %r: given twice" % info.filename) from None
            except OSError as error:
                raise ModelError("archive entry %r: %s" % (info.filename, error)) from None
            try:
                with os.fdopen(fd, "wb") as out, archive.open(info) as src:
                    while True:
                        chunk = src.read(CHUNK)
                        if not chunk:
                            break
                        total += len(chunk)
                        if total > max_bytes:
                            raise ModelError("%s: unpacks to more than %d bytes"
                                             % (path, max_bytes))
                        out.write(chunk)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError,
                    EOFError, OSError) as error:
                raise ModelError("archive entry %r: %s" % (info.filename, error)) from None


def _make_folders(root, folder):
    """Make `folder` (inside `root`) and its parents, refusing any that is not a real folder
    (a file or a link made by an earlier entry)."""
    rel = os.path.relpath(folder, root)
    if rel == ".":
        return
    current = root
    for part in rel.split(os.sep):
        current = os.path.join(current, part)
        try:
            os.mkdir(current, 0o700)
        except FileExistsError:
            st = os.lstat(current)
            if not stat.S_ISDIR(st.st_mode):
                raise ModelError("archive entry %r: a folder and a file of the same name"
                                 % os.path.relpath(current, root)) from None


# ---------------------------------------------------------------------------
# The model's description


class ModelSpec(object):
    """The model a worker serves, as found on disk.

    ``name``, ``version``, ``model_dir`` (the folder holding the model's files: the
    unpacked archive, or the TorchScript file's folder), ``manifest`` (TorchServe's
    MANIFEST.json as a dict; one is made up for a bare TorchScript file), ``serialized_file``
    and ``model_file`` (absolute paths or None), ``handler`` (the handler's name or file
    as the manifest or the configuration says it), ``batch_size``, ``ipex_enable``,
    ``unpacked`` (the private folder to remove at exit, or None), ``config`` (the whole
    configuration)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def cleanup(self):
        """Remove the private folder an archive was unpacked into."""
        if self.unpacked:
            shutil.rmtree(self.unpacked, ignore_errors=True)
            self.unpacked = None


def _inside(model_dir, name, what):
    """The absolute path of `name` (a manifest's relative file name) inside `model_dir`;
    ModelError when it is absolute or leaves the folder (also through a link)."""
    if not isinstance(name, str) or not name:
        raise ModelError("%s: %r is not a file name" % (what, name))
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise ModelError("%s %r: not a file inside the model's folder" % (what, name))
    path = os.path.join(model_dir, name)
    real, root = os.path.realpath(path), os.path.realpath(model_dir)
    if os.path.commonpath([real, root]) != root:
        raise ModelError("%s %r: leads outside the model's folder" % (what, name))
    return path


def _read_manifest(model_dir):
    path = os.path.join(model_dir, MANIFEST)
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise ModelError("%s: no %s (not a model archive's layout)" % (model_dir, MANIFEST)) \
            from None
    except (OSError, ValueError) as error:
        raise ModelError("%s: %s" % (path, error)) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("model"), dict):
        raise ModelError("%s: no \"model\" object" % path)
    return manifest


def _stem(path):
    base = os.path.basename(os.path.normpath(path))
    return base.rsplit(".", 1)[0] if "." in base else base


def resolve(config):
    """The ModelSpec of a worker configuration (PINFER_WORKER_CONFIG as a dict).

    ``path``: the model's file or folder (a TorchScript file, a ``.mar`` or any zip archive,
    a folder with MAR-INF/MANIFEST.json); or, as the first form of the protocol had it,
    ``model_dir`` (a folder with or without a manifest) with ``serialized_file``.  The
    configuration's ``model``, ``version``, ``handler``, ``serialized_file`` and
    ``model_file`` win over the manifest's ``modelName``, ``modelVersion``, ``handler``,
    ``serializedFile`` and ``modelFile``."""
    if not isinstance(config, dict):
        raise ModelError("the configuration is not a JSON object")
    unpacked = None
    path = config.get("path")
    model_dir = config.get("model_dir")
    manifest = None
    try:
        if path is not None:
            if not isinstance(path, str) or not path:
                raise ModelError("path: %r is not a file name" % (path,))
            if os.path.isdir(path):
                model_dir = path
                manifest = _read_manifest(path)
            elif os.path.isfile(path) and (path.endswith(".mar") or _has_manifest(path)):
                limit = int(config.get("max_unpacked_bytes") or DEFAULT_MAX_UNPACKED)
                parent = config.get("unpack_dir") or None
                unpacked = tempfile.mkdtemp(prefix="pinfer-model-", dir=parent)
                unpack_archive(path, unpacked, max_bytes=limit)
                model_dir = unpacked
                manifest = _read_manifest(unpacked)
            elif os.path.isfile(path):
                model_dir = os.path.dirname(os.path.abspath(path))
                manifest = {"model": {"modelName": _stem(path),
                                      "serializedFile": os.path.basename(path),
                                      "handler": "tensor"}}
            else:
                raise ModelError("%s: no such file or folder" % path)
        elif isinstance(model_dir, str) and model_dir:
            if os.path.exists(os.path.join(model_dir, MANIFEST)):
                manifest = _read_manifest(model_dir)
            elif isinstance(config.get("manifest"), dict) and \
                    isinstance(config["manifest"].get("model"), dict):
                manifest = config["manifest"]
            else:
                manifest = {"model": {"modelName": _stem(model_dir), "handler": "tensor"}}
        else:
            raise ModelError("the configuration has neither \"path\" nor \"model_dir\"")
        model_dir = os.path.abspath(model_dir)
        entry = manifest["model"]
        name = config.get("model") or entry.get("modelName") or _stem(path or model_dir)
        version = config.get("version") or entry.get("modelVersion") or "1.0"
        serialized = config.get("serialized_file") or entry.get("serializedFile")
        model_file = config.get("model_file") or entry.get("modelFile")
        handler = config.get("handler") or entry.get("handler") or "tensor"
        if serialized:
            serialized = _file_of(model_dir, serialized, "serializedFile", config)
            if not os.path.isfile(serialized):
                raise ModelError("serializedFile %s: no such file" % serialized)
        if model_file:
            model_file = _file_of(model_dir, model_file, "modelFile", config)
            if not os.path.isfile(model_file):
                raise ModelError("modelFile %s: no such file" % model_file)
        batch_size = config.get("batch_size", 1)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ModelError("batch_size: %r is not a positive int" % (batch_size,))
        return ModelSpec(name=str(name), version=str(version), model_dir=model_dir,
                         manifest=manifest, serialized_file=serialized, model_file=model_file,
                         handler=handler, batch_size=batch_size,
                         ipex_enable=bool(config.get("ipex_enable")), unpacked=unpacked,
                         config=config)
    except BaseException:
        if unpacked:
            shutil.rmtree(unpacked, ignore_errors=True)
        raise


def _file_of(model_dir, name, what, config):
    """A file the manifest or the configuration names: inside the model's folder, except an
    absolute path the configuration gives (the front end is trusted, archives are not)."""
    if os.path.isabs(name) and name in (config.get("serialized_file"), config.get("model_file")):
        return name
    return _inside(model_dir, name, what)


def _has_manifest(path):
    """Is `path` a zip archive with MAR-INF/MANIFEST.json (TorchScript files and torch.save
    files are zip archives too, without one)?"""
    try:
        with zipfile.ZipFile(path) as z:
            z.getinfo(MANIFEST)
        return True
    except (KeyError, zipfile.BadZipFile, OSError):
        return False


# ---------------------------------------------------------------------------
# Loading


def load_torchscript(path):
    """A TorchScript module from `path`, on the CPU, in eval mode."""
    import torch
    model = torch.jit.load(path, map_location="cpu")
    model.eval()
    return model


def import_file(path, name=None):
    """Import the Python file `path` as a module named after it (its folder first on
    sys.path, so that it can import the files beside it, as TorchServe lets handlers and
    model files do).  The module is registered in sys.modules under its name."""
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = name or _stem(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError("%s: not a Python file" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def classes_of(module):
    """The classes defined in `module` itself (not imported into it), as TorchServe's
    list_classes_from_module finds them."""
    return [member for _, member in inspect.getmembers(module, inspect.isclass)
            if member.__module__ == module.__name__]


def load_state_dict(path):
    """A state dict from `path`: torch.load with weights_only=True (tensors and plain
    containers only, no arbitrary pickled objects); a file that needs more is loaded as
    TorchServe loads it, with the full unpickler (which runs code the file names)."""
    import pickle

    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(path, map_location="cpu")


def load_eager(model_file, serialized_file):
    """TorchServe's eager model: the one class `model_file` defines, instantiated without
    arguments, with the state dict of `serialized_file` (when given) loaded into it."""
    module = import_file(model_file)
    found = classes_of(module)
    if len(found) != 1:
        raise ModelError("modelFile %s: expected one class definition, found %d (%s)"
                         % (os.path.basename(model_file), len(found),
                            ", ".join(c.__name__ for c in found) or "none"))
    model = found[0]()
    if serialized_file:
        model.load_state_dict(load_state_dict(serialized_file))
    model.eval()
    return model


def load_model(spec):
    """The model of a spec, as TorchServe's BaseHandler.initialize loads it: the eager model
    when there is a modelFile, else the TorchScript file; ModelError when neither."""
    if spec.model_file:
        return load_eager(spec.model_file, spec.serialized_file)
    if not spec.serialized_file:
        raise ModelError("the model has no serializedFile to load")
    try:
        return load_torchscript(spec.serialized_file)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "not TorchScript"
        raise ModelError("%s: not a TorchScript file (%s); an eager model needs a modelFile"
                         % (os.path.basename(spec.serialized_file), first)) from None


def load_label_mapping(path):
    """index_to_name.json as TorchServe reads it: {"index": "label"}, a label list's last
    item, or {"object_type_names": [...]}; None when the file is missing."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        try:
            mapping = json.loads(f.read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ModelError("%s: %s" % (os.path.basename(path), error)) from None
    if not isinstance(mapping, dict):
        raise ModelError('%s: must map "index" to "label"' % os.path.basename(path))
    if isinstance(mapping.get("object_type_names"), list):
        return {str(i): v for i, v in enumerate(mapping["object_type_names"])}
    out = {}
    for key, value in mapping.items():
        if isinstance(value, list) and value:
            value = value[-1]
        if not isinstance(value, str):
            raise ModelError("%s: the label of %r is neither a string nor a list of strings"
                             % (os.path.basename(path), key))
        out[str(key)] = value
    return out
