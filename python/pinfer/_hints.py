"""How MultiStreamModule cuts a call's arguments and joins the streams' outputs.

A hint mirrors a value: lists and tuples (interchangeably) and dicts nest, an
int leaf is the dimension of the tensor at that place to split or to
concatenate along, and ``None`` passes the value whole (inputs) or takes
stream 0's (outputs).  Every mismatch between a hint and a value is a
ValueError naming the place (``args[1]['mask']``, ``output[0]``), raised
before anything runs, so that a wrong hint never yields plausible but wrong
results.
"""
import copy
import operator

try:
    import torch
except ImportError:  # pragma: no cover - MultiStreamModule needs torch
    torch = None


class MultiStreamModuleHint(object):
    """How to split the inputs or concatenate the outputs of a MultiStreamModule.

    ``MultiStreamModuleHint(*args, **kwargs)`` mirrors a call's positional and
    keyword arguments (as an input hint) or, with one positional argument, a
    model's return value (as an output hint): ``MultiStreamModuleHint(0)``
    splits the first argument along dim 0; ``MultiStreamModuleHint((0, None))``
    concatenates the first element of a returned tuple and takes the second
    from stream 0.  The leaves are checked now, so that a bad hint fails where
    it is written.
    """

    def __init__(self, *args, **kwargs):
        for i, leaf in enumerate(args):
            _check_hint(leaf, "MultiStreamModuleHint: args[%d]" % i, 0)
        for key, leaf in kwargs.items():
            _check_hint(leaf, "MultiStreamModuleHint: kwargs[%r]" % (key,), 0)
        self.args = list(args)
        self.kwargs = dict(kwargs)
        self.args_len = len(self.args)
        self.kwargs_len = len(self.kwargs)

    def __repr__(self):
        parts = [repr(a) for a in self.args]
        parts += ["%s=%r" % item for item in self.kwargs.items()]
        return "MultiStreamModuleHint(%s)" % ", ".join(parts)


# How deep a hint may nest.  Matching and joining recurse once or twice a level, so a hint
# a thousand levels deep would end in a RecursionError, and one that contains itself
# (``h = [0]; h.append(h)``) would never end: both are ValueErrors when the hint is made.
MAX_DEPTH = 100


def _check_hint(hint, path, depth):
    """A hint is None, an int (not a bool), or lists, tuples and dicts of hints, nested at
    most MAX_DEPTH levels."""
    if hint is None or _is_dim(hint):
        return
    if isinstance(hint, (list, tuple, dict)) and depth >= MAX_DEPTH:
        raise ValueError("%s: the hint nests more than %d levels deep (does it contain "
                         "itself?)" % (path, MAX_DEPTH))
    if isinstance(hint, (list, tuple)):
        for i, leaf in enumerate(hint):
            _check_hint(leaf, "%s[%d]" % (path, i), depth + 1)
        return
    if isinstance(hint, dict):
        for key, leaf in hint.items():
            _check_hint(leaf, "%s[%r]" % (path, key), depth + 1)
        return
    raise ValueError("%s: %r is not a hint (an int dimension, None, or a list, tuple or dict "
                     "of hints)" % (path, hint))


def _is_dim(hint):
    """An int leaf: an int or an integer scalar (numpy's, a 0-d integer tensor).  Bools are
    ints to Python and numpy, and 0-d bool tensors have __index__, but none is a dimension;
    nor is a tensor or an array of one element."""
    if isinstance(hint, bool) or getattr(hint, "ndim", 0) != 0:
        return False
    if str(getattr(hint, "dtype", "")) in ("bool", "torch.bool"):
        return False
    try:
        operator.index(hint)
    except TypeError:
        return False
    return True


def _kind(value):
    return type(value).__name__


def _dim_of(tensor, dim, path, what):
    """The dimension `dim` of `tensor` made non-negative, or a ValueError."""
    dim = operator.index(dim)
    if tensor.dim() == 0:
        raise ValueError("%s: cannot %s a 0-dimensional tensor" % (path, what))
    if not -tensor.dim() <= dim < tensor.dim():
        raise ValueError("%s: dimension %d is out of range for a tensor of %d dimensions"
                         % (path, dim, tensor.dim()))
    return dim % tensor.dim()


def _rebuild(like, items):
    """A container of `like`'s type holding `items`: a list, or (key, value) pairs of like's
    keys for dicts.

    A dict subclass is copied and its values replaced, rather than made from the pairs:
    that keeps a defaultdict's factory, and a Counter would count the pairs.  namedtuples
    take the items as arguments, structseqs (torch.return_types.max, ...) as one sequence;
    other tuple subclasses and list subclasses become tuples and lists."""
    if isinstance(like, dict):
        if type(like) is dict:
            return dict(items)
        try:
            rebuilt = copy.copy(like)
            for key, value in items:
                rebuilt[key] = value
            return rebuilt
        except (TypeError, copy.Error):  # one that cannot be copied or changed: a dict
            return dict(items)
    if isinstance(like, list):
        return list(items)
    if hasattr(like, "_fields"):  # a namedtuple
        return type(like)(*items)
    if hasattr(type(like), "n_sequence_fields"):  # a structseq
        return type(like)(items)
    return tuple(items)


# ---------------------------------------------------------------------------
# Input split


class Split(object):
    """A call's arguments checked against the input hint: its batch, and the chunks.

    The batch is the size of the first split tensor (positional arguments
    first, then keyword arguments in the hint's order) along its dimension;
    every split tensor must have that size.  The hint has one positional
    entry per positional argument of the call, no more and no fewer (matched
    by position, an extra entry means the hint was written for another
    signature); its keyword entries are matched by name, and those the call
    does not pass are not used (so optional keyword arguments can be
    hinted).  An argument without a hint is an error.
    """

    def __init__(self, hint, args, kwargs):
        self.hint = hint
        self.args = args
        self.kwargs = kwargs
        self.dims = []  # (path, size, dim) of every split tensor, in order
        if len(args) != hint.args_len:
            raise ValueError("input_split_hint has %d positional entries, but the call passes %d "
                             "positional arguments (one entry per positional argument)"
                             % (hint.args_len, len(args)))
        for i, value in enumerate(args):
            self._check(hint.args[i], value, "args[%d]" % i)
        missing = [key for key in kwargs if key not in hint.kwargs]
        if missing:
            raise ValueError("input_split_hint has no entry for the keyword argument(s) %s"
                             % ", ".join(repr(k) for k in missing))
        for key, leaf in hint.kwargs.items():
            if key in kwargs:
                self._check(leaf, kwargs[key], "kwargs[%r]" % (key,))
        self.batch = self._batch()

    def _check(self, hint, value, path):
        if hint is None:
            return
        if _is_dim(hint):
            self._check_tensor(hint, value, path)
        elif isinstance(hint, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                raise ValueError("%s: the hint is a %s, the argument a %s"
                                 % (path, _kind(hint), _kind(value)))
            if len(hint) != len(value):
                raise ValueError("%s: the hint has %d entries, the argument %d"
                                 % (path, len(hint), len(value)))
            for i, (leaf, item) in enumerate(zip(hint, value)):
                self._check(leaf, item, "%s[%d]" % (path, i))
        else:
            self._check_dict(hint, value, path)

    def _check_tensor(self, hint, value, path):
        if torch is None or not isinstance(value, torch.Tensor):
            raise ValueError("%s: the hint %d splits a tensor, but the argument is a %s"
                             % (path, hint, _kind(value)))
        dim = _dim_of(value, hint, path, "split")
        self.dims.append((path, value.size(dim), dim))

    def _check_dict(self, hint, value, path):
        if not isinstance(value, dict):
            raise ValueError("%s: the hint is a dict, the argument a %s" % (path, _kind(value)))
        missing = [key for key in value if key not in hint]
        if missing:
            raise ValueError("%s: the hint has no entry for the key(s) %s"
                             % (path, ", ".join(repr(k) for k in missing)))
        for key, leaf in hint.items():
            if key in value:
                self._check(leaf, value[key], "%s[%r]" % (path, key))

    def _batch(self):
        if not self.dims:
            raise ValueError("input_split_hint splits no tensor of this call (its int leaves "
                             "match no argument), so there is no batch to cut")
        path, batch, dim = self.dims[0]
        for other, size, other_dim in self.dims[1:]:
            if size != batch:
                raise ValueError("split sizes disagree: %s has %d along dim %d, but %s has %d "
                                 "along dim %d" % (path, batch, dim, other, size, other_dim))
        return batch

    def chunk(self, begin, end):
        """(args, kwargs) of items [begin, end): views of the split tensors, the rest whole."""
        args = tuple(_cut(self.hint.args[i], value, begin, end)
                     for i, value in enumerate(self.args))
        kwargs = {key: _cut(self.hint.kwargs[key], value, begin, end)
                  for key, value in self.kwargs.items()}
        return args, kwargs


def _cut(hint, value, begin, end):
    """`value` with every tensor under an int leaf narrowed to [begin, end) (a view)."""
    if hint is None:
        return value
    if _is_dim(hint):
        return value.narrow(operator.index(hint), begin, end - begin)
    if isinstance(hint, (list, tuple)):
        return _rebuild(value, [_cut(h, v, begin, end) for h, v in zip(hint, value)])
    return _rebuild(value, [(k, _cut(hint[k], v, begin, end)) for k, v in value.items()])


# ---------------------------------------------------------------------------
# Output concatenation


def output_hint(hint):
    """The hint of the model's return value held by an output MultiStreamModuleHint.

    One positional entry is the return value's hint; several positional
    entries are those of a returned tuple; keyword entries alone those of a
    returned dict.
    """
    if hint.args and hint.kwargs:
        raise ValueError("output_concat_hint: give the return value's hint as one positional "
                         "argument, e.g. MultiStreamModuleHint((0, 0)) or "
                         "MultiStreamModuleHint({'out': 0})")
    if hint.kwargs:
        return dict(hint.kwargs)
    if not hint.args:
        raise ValueError("output_concat_hint is empty: MultiStreamModuleHint(0) concatenates a "
                         "returned tensor along dim 0")
    if len(hint.args) == 1:
        return hint.args[0]
    return tuple(hint.args)


def concat(hint, outputs, path="output"):
    """The streams' outputs joined as `hint` says: torch.cat under int leaves, stream 0's value
    under None."""
    first = outputs[0]
    if hint is None:
        return first
    if _is_dim(hint):
        return _cat(hint, outputs, path)
    if isinstance(hint, (list, tuple)):
        for i, value in enumerate(outputs):
            if not isinstance(value, (list, tuple)) or len(value) != len(hint):
                raise ValueError("%s: the output hint is a %s of %d entries, but stream %d "
                                 "returned %s" % (path, _kind(hint), len(hint), i,
                                                  _describe(value)))
        return _rebuild(first, [concat(leaf, [value[i] for value in outputs],
                                       "%s[%d]" % (path, i))
                                for i, leaf in enumerate(hint)])
    for i, value in enumerate(outputs):
        if not isinstance(value, dict):
            raise ValueError("%s: the output hint is a dict, but stream %d returned a %s"
                             % (path, i, _kind(value)))
        missing = [key for key in value if key not in hint]
        if missing:
            raise ValueError("%s: the output hint has no entry for the key(s) %s"
                             % (path, ", ".join(repr(k) for k in missing)))
        if set(value) != set(first):
            raise ValueError("%s: stream %d returned the keys %s, stream 0 %s"
                             % (path, i, sorted(value, key=repr), sorted(first, key=repr)))
    return _rebuild(first, [(key, concat(hint[key], [value[key] for value in outputs],
                                         "%s[%r]" % (path, key)))
                            for key in first])


def _cat(hint, outputs, path):
    for i, value in enumerate(outputs):
        if torch is None or not isinstance(value, torch.Tensor):
            raise ValueError("%s: the output hint %d concatenates tensors, but stream %d returned "
                             "a %s" % (path, hint, i, _kind(value)))
    dim = _dim_of(outputs[0], hint, path, "concatenate")
    if len(outputs) == 1:
        return outputs[0]
    # torch.cat's own error would be a RuntimeError that names neither the place nor the hint.
    shape = list(outputs[0].shape)
    for i, value in enumerate(outputs[1:], 1):
        other = list(value.shape)
        if len(other) == len(shape):
            other[dim] = shape[dim]  # the one size that may differ
        if other != shape:
            raise ValueError("%s: stream %d returned a tensor of shape %s, stream 0 one of shape "
                             "%s: they cannot be concatenated along dim %d (is it the batch's?)"
                             % (path, i, list(value.shape), shape, dim))
    return torch.cat(outputs, dim=dim)


def _describe(value):
    if isinstance(value, (list, tuple)):
        return "a %s of %d entries" % (_kind(value), len(value))
    return "a %s" % _kind(value)
