"""One batch through the model: hidden states, hooks, early stop, key/value cache, pooling.

Hugging Face models return every hidden state with ``output_hidden_states=True``: the input
of block 0 (``embeddings``), the output of each block, and the model's final output
(``last_hidden_state``, after a final norm where the model has one) as the last one. The
extractor takes the *fast path* when it helps and the model's layout allows it:

* **Early stop.** When the deepest requested hidden state is not the last one, hooks on the
  model's blocks (the one ``ModuleList`` with ``num_hidden_layers`` blocks) capture the
  requested states and a :class:`StopForward` raised after the deepest one ends the pass:
  the blocks above it never run and nothing else is kept.
* **Key/value cache.** Causal language models (detected by a probe: changing the last token
  leaves every hidden state of the earlier ones unchanged) read windows longer than
  :data:`KV_CHUNK` tokens in chunks of :data:`KV_CHUNK` tokens, each chunk attending to the
  cached keys and values of the earlier ones. For a causal model this is the same
  computation as one pass over the window (memory is bounded by a chunk instead of the
  window).

The fast path is checked once per extractor against the model's own
``output_hidden_states`` on the first batch (relative error below 1e-4, 2e-2 under mixed
precision or with half-precision weights); when they disagree the plain forward pass is used (logged at INFO level).
Hooked modules (layers given by module name) always use the plain forward pass.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import resolve_dtype
from .._utils import logger
from ._pooling import pool_items, pool_tokens
from ._text import collate_text
from ._vision_audio import collate_audio, collate_images, load_image, valid_frames

KV_CHUNK = 256  # tokens per forward call of a causal model reading a long window
_TEXT_INPUTS = {"input_ids", "attention_mask"}


class StopForward(Exception):
    """Raised by a hook once the deepest requested layer has run."""


def is_oom(err: BaseException) -> bool:
    import torch

    if isinstance(err, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    msg = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


def first_tensor(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "last_hidden_state") and out.last_hidden_state is not None:
        return out.last_hidden_state
    values = out.values() if isinstance(out, dict) else out
    for v in values if isinstance(values, (list, tuple)) or hasattr(values, "__iter__") else []:
        if isinstance(v, torch.Tensor):
            return v
    raise TypeError(f"A hooked module returned {type(out).__name__} with no tensor in it.")


# --------------------------------------------------------------------------- model layout
def find_blocks(module, n_layers: int):
    """The ``ModuleList`` of the model's ``n_layers`` blocks (the largest such list), or None."""
    import torch

    best, size = None, -1
    for _, mod in module.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n_layers and n_layers > 0:
            if len({type(m) for m in mod}) != 1:
                continue
            n = sum(p.numel() for p in mod.parameters())
            if n > size:
                best, size = mod, n
    return best


def cache_keyword(module) -> tuple[str | None, bool]:
    """The name under which the model's forward takes a key/value cache (if any), and whether it takes use_cache."""
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return None, False
    name = next((n for n in ("cache", "past_key_values") if n in params), None)
    return name, "use_cache" in params


def probe_causal(module, device) -> bool:
    """True when changing the last token leaves every earlier position of every hidden state unchanged."""
    import torch

    vocab = int(getattr(module.config, "vocab_size", 0) or 0)
    if vocab < 6 or getattr(module, "main_input_name", "input_ids") != "input_ids":
        return False
    a = torch.tensor([[1, 2, 3, 4]], device=device)
    b = torch.tensor([[1, 2, 3, 5]], device=device)
    try:
        with torch.inference_mode():
            ha = module(input_ids=a, output_hidden_states=True).hidden_states
            hb = module(input_ids=b, output_hidden_states=True).hidden_states
    except Exception as err:  # noqa: BLE001 - any model that cannot run the probe is treated as bidirectional
        logger.info("Causality probe failed (%s); the model is treated as bidirectional.", err)
        return False
    if ha is None or hb is None:
        return False
    same = all(torch.allclose(x[:, :3].float(), y[:, :3].float(), rtol=1e-5, atol=1e-6) for x, y in zip(ha, hb))
    last_differs = any(not torch.allclose(x[:, 3].float(), y[:, 3].float()) for x, y in zip(ha[1:], hb[1:]))
    return bool(same and last_differs)


def _new_cache(module):
    try:
        from transformers import DynamicCache
    except ImportError:  # pragma: no cover - transformers without Cache classes
        return None
    try:
        return DynamicCache(config=module.config)
    except TypeError:
        return DynamicCache()


@dataclass
class FastPath:
    """What the fast path may use for one extractor (decided once, checked on the first batch)."""

    blocks: Any = field(default=None, repr=False)  # ModuleList of the blocks, for early stop
    causal: bool = False
    cache_kw: str | None = None
    use_cache_arg: bool = False  # the forward takes use_cache=
    checked: bool = False
    ok: bool = True


def hidden_fast(module, inputs: dict, indices: list[int], n_hidden: int, fast: FastPath) -> dict:
    """Hidden states ``indices`` (into ``output_hidden_states``) of one batch, through the fast path.

    Returns ``{index: tensor (batch, tokens, features)}``.
    """
    import torch

    last = n_hidden - 1
    top = max(indices)
    blocks = fast.blocks
    stop_at = top if (top < last and blocks is not None) else None
    captured: dict[int, list] = {i: [] for i in indices}
    handles = []
    if blocks is not None:
        def pre_hook(_mod, args, kwargs):
            captured[0].append(args[0] if args else kwargs["hidden_states"])
            if stop_at == 0:
                raise StopForward

        if 0 in captured:
            handles.append(blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
        for k in (i for i in indices if 0 < i < last):
            def hook(_mod, _inp, out, k=k):
                captured[k].append(first_tensor(out))
                if k == stop_at:
                    raise StopForward

            handles.append(blocks[k - 1].register_forward_hook(hook))
    T = inputs["input_ids"].shape[1] if "input_ids" in inputs else 0
    chunked = (fast.causal and fast.cache_kw is not None and T > KV_CHUNK and top > 0
               and set(inputs) <= _TEXT_INPUTS)
    cache = _new_cache(module) if chunked else None
    bounds = [(a, min(a + KV_CHUNK, T)) for a in range(0, T, KV_CHUNK)] if cache is not None else [(0, None)]
    try:
        for a, b in bounds:
            if b is None:
                kw = dict(inputs)
                if fast.use_cache_arg:
                    kw["use_cache"] = False
            else:
                kw = {"input_ids": inputs["input_ids"][:, a:b], fast.cache_kw: cache, "use_cache": True}
                if "attention_mask" in inputs:
                    kw["attention_mask"] = inputs["attention_mask"][:, :b]
            if blocks is None:
                kw["output_hidden_states"] = True
            try:
                out = module(**kw)
            except StopForward:
                out = None
            if blocks is None:
                for i in indices:
                    captured[i].append(out.hidden_states[i])
            elif last in captured:
                captured[last].append(out.last_hidden_state)
            if b is not None and out is not None:
                returned = getattr(out, fast.cache_kw, None)
                if returned is not None and returned is not cache:  # models that return a new cache
                    cache = returned
    finally:
        for h in handles:
            h.remove()
    return {i: (v[0] if len(v) == 1 else torch.cat(v, dim=1)) for i, v in captured.items()}


def relative_error(fast: dict, plain: dict) -> float:
    """The largest relative (Frobenius) difference between two ``{index: tensor}`` sets."""
    worst = 0.0
    for i, ref in plain.items():
        got = fast[i].float()
        ref = ref.float()
        if got.shape != ref.shape:
            return float("inf")
        den = float(ref.norm()) or 1.0
        worst = max(worst, float((got - ref).norm()) / den)
    return worst


# --------------------------------------------------------------------------- one batch
class BatchRunner:
    """Inputs, forward pass and pooling of one batch of units for a :class:`FeatureExtractor`."""

    def __init__(self, handle, refs, device, pooling: str, out_dtype, amp_dtype, fast: FastPath | None) -> None:
        self.handle, self.refs, self.device, self.pooling = handle, refs, device, pooling
        self.out_dtype, self.amp_dtype, self.fast = resolve_dtype(out_dtype), amp_dtype, fast
        self.captured: dict[str, Any] = {}
        self.fired: list[str] = []
        self.hooks: list = []
        self.hidden = sorted((r for r in refs if r.source == "hidden"), key=lambda r: r.index)
        import torch

        weights = next((p.dtype for p in handle.module.parameters() if p.is_floating_point()), torch.float32)
        self.half = amp_dtype is not None or weights in (torch.float16, torch.bfloat16)

    def __enter__(self):
        mods = dict(self.handle.module.named_modules())
        for ref in self.refs:
            if ref.source != "hook":
                continue

            def hook(_mod, _inp, out, name=ref.name):
                self.captured[name] = first_tensor(out)
                if name not in self.fired:
                    self.fired.append(name)

            self.hooks.append(mods[ref.module].register_forward_hook(hook))
        return self

    def __exit__(self, *exc):
        for hk in self.hooks:
            hk.remove()
        self.hooks = []

    def inputs(self, kind, batch_units):
        h = self.handle
        if kind == "text":
            tok = h.processor
            pad = getattr(tok, "pad_token_id", None)
            pad = pad if pad is not None else (getattr(tok, "eos_token_id", None) or 0)
            inputs, flat, rows = collate_text(batch_units, pad)
            if h.kind != "hf" and h.preprocess is not None:
                inputs = h.preprocess(inputs)
            return inputs, flat, rows, None
        contents = [u.content for u in batch_units]
        rows = np.array([u.row for u in batch_units])
        if kind == "item":
            return h.preprocess(contents), None, rows, None
        if kind == "image":
            return collate_images([load_image(c) for c in contents], h.processor, h.preprocess), None, rows, None
        return collate_audio(contents, h.processor, h.preprocess), None, rows, [len(c) for c in contents]

    def __call__(self, kind, batch_units, n_positions):
        """``(rows, {layer: array (n_rows, ...)})`` of one batch."""
        import torch

        dev = self.device
        inputs, flat, rows, lengths = self.inputs(kind, batch_units)
        cuda = dev.type == "cuda"

        def move(t):
            if not isinstance(t, torch.Tensor):
                return t
            return (t.pin_memory() if cuda else t).to(dev, non_blocking=cuda)

        inputs = {k: move(v) for k, v in inputs.items()} if isinstance(inputs, dict) else move(inputs)
        autocast = torch.autocast(device_type="cuda", dtype=self.amp_dtype) if self.amp_dtype is not None \
            else contextlib.nullcontext()
        self.captured.clear()
        with torch.inference_mode(), autocast:
            layer_out = self._layers(inputs)
            ids = inputs.get("input_ids") if isinstance(inputs, dict) else None
            tokens_shape = tuple(ids.shape) if ids is not None else None
            pooled = self._pool_all(kind, layer_out, flat, rows, lengths, n_positions, tokens_shape)
        return pooled.pop("__rows__"), pooled

    def _layers(self, inputs) -> dict:
        """Requested layer name -> output tensor: hidden states in model order, then hooked modules."""
        module, h = self.handle.module, self.handle
        fast = self.fast
        indices = [r.index for r in self.hidden]
        n_hidden = len(h.hidden_names)
        use_fast = (fast is not None and fast.ok and isinstance(inputs, dict) and indices and not self.hooks
                    and (fast.causal or (fast.blocks is not None and max(indices) < n_hidden - 1)))
        layer_out: dict = {}
        got = None
        if use_fast:
            try:
                got = hidden_fast(module, inputs, indices, n_hidden, fast)
            except Exception as err:  # noqa: BLE001 - a fast path that fails its first batch is dropped
                if fast.checked or is_oom(err):
                    raise
                logger.info("Fast forward path failed on the first batch (%s: %s); using the plain forward pass.",
                            type(err).__name__, err)
                fast.checked, fast.ok = True, False
        if got is not None:
            if not fast.checked:
                plain = self._plain(inputs, want_hidden=True)
                ref = {i: plain.hidden_states[i] for i in indices}
                err = relative_error(got, ref)
                fast.checked = True
                fast.ok = err <= (2e-2 if self.half else 1e-4)
                logger.info("Fast forward path (early stop%s) %s: relative error %.2e vs output_hidden_states.",
                            ", key/value cache" if fast.causal else "", "used" if fast.ok else "NOT used", err)
                if not fast.ok:
                    got = ref
            for r in self.hidden:
                layer_out[r.name] = got[r.index]
            return layer_out
        out = self._plain(inputs, want_hidden=bool(indices))
        if indices:
            hs = getattr(out, "hidden_states", None)
            if hs is None or len(hs) != len(h.hidden_names):
                raise ValueError(f"{type(module).__name__} returned {None if hs is None else len(hs)} hidden "
                                 f"states, expected {len(h.hidden_names)}; use module names as layers (hooks).")
            for r in self.hidden:
                layer_out[r.name] = hs[r.index]
        for r in self.refs:
            if r.source == "hook" and r.name in self.captured:
                layer_out[r.name] = self.captured[r.name]
        return layer_out

    def _plain(self, inputs, want_hidden: bool):
        module = self.handle.module
        if self.handle.kind == "hf":
            extra = {"use_cache": False} if self.fast is not None and self.fast.use_cache_arg else {}
            return module(**inputs, output_hidden_states=want_hidden, **extra)
        return module(**inputs) if isinstance(inputs, dict) else module(inputs)

    def _pool_all(self, kind, layer_out, flat, rows, lengths, n_positions, tokens_shape=None):
        result = {"__rows__": rows}
        if flat is not None:
            # output rows in order of first appearance: one row per window (sentences) then maps
            # straight onto the batched matmul's output, no gather needed
            uniq, first, inv = np.unique(rows, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            local = rank[inv]
            result["__rows__"] = uniq[order]
        valid = None
        for name, y in layer_out.items():
            if flat is not None:
                if y.ndim < 3 or (tokens_shape is not None and tuple(y.shape[:2]) != tokens_shape):
                    raise ValueError(
                        f"Layer {name!r} gave an output of shape {tuple(y.shape)} for token ids of shape "
                        f"{tokens_shape}; text pooling needs one vector per token (batch, tokens, features). "
                        "Pick a module that outputs hidden states (e.g. a transformer block).")
                t = pool_tokens(y, flat, local, len(uniq), self.pooling, n_positions)
            else:
                if kind == "audio" and lengths is not None and y.ndim == 3 and valid is None:
                    valid = valid_frames(self.handle.module, lengths, y.shape[1])
                t = pool_items(y, self.pooling, valid if (y.ndim == 3 and kind == "audio") else None, name)
            result[name] = t.to(self.out_dtype).cpu().numpy()
        return result

    def ordered_names(self) -> list[str]:
        hidden = [r.name for r in self.hidden]
        hooked = [r.name for r in self.refs if r.source == "hook"]
        missing = [n for n in hooked if n not in self.fired]
        if missing:
            raise ValueError(f"The modules {missing[:5]} did not run during the forward pass, so they have no "
                             "features; pick layers the model uses.")
        return hidden + sorted(hooked, key=self.fired.index)
