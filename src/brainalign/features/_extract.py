"""``FeatureExtractor``: every layer's representation of every stimulus, batch by batch."""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._backend import resolve_device, resolve_dtype
from .._utils import check_option, logger, progress_bar
from ..data import Features, Stimuli
from ._models import load_model, resolve_layers, weights_hash
from ._pooling import POOLINGS, pool_items, pool_tokens
from ._store import FeatureStore, MemoryWriter
from ._text import collate_text, plan_narrative, plan_texts
from ._vision_audio import ItemUnit, audio_units, collate_audio, collate_images, load_image, valid_frames

_AUTO_START = {"cuda": 256, "cpu": 64, "mps": 64}
_ITEM_COLUMNS = ["stimulus_id", "modality", "onset", "duration", "run", "text", "sfreq"]


def _is_oom(err: BaseException) -> bool:
    import torch

    if isinstance(err, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    msg = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


def as_stimuli(stimuli: Any, sfreq: float | None = None) -> Stimuli:
    """A ``Stimuli`` from a ``Stimuli`` or a plain list of texts / images / waveforms."""
    if isinstance(stimuli, Stimuli):
        return stimuli
    if isinstance(stimuli, (str, bytes)):
        stimuli = [stimuli]
    items = list(stimuli)
    if not items:
        raise ValueError("No stimuli to extract: got an empty list. Give texts, images or waveforms.")
    first = items[0]
    if isinstance(first, str):
        if all(isinstance(i, str) for i in items) and not any(os.path.splitext(i)[1].lower() in
                                                             (".png", ".jpg", ".jpeg", ".bmp") for i in items):
            return Stimuli.from_texts(items)
        return Stimuli.from_images(items)
    if hasattr(first, "getdata") or hasattr(first, "__fspath__"):
        return Stimuli.from_images(items)
    arr = np.asarray(first)
    if arr.ndim == 1:
        if sfreq is None:
            raise ValueError("Waveforms given as a list need their sampling rate: extract(waves, sfreq=16000).")
        return Stimuli.from_audio(items, sfreq)
    return Stimuli.from_images(items)


@fill_doc
class FeatureExtractor:
    """Layerwise features of any PyTorch / Hugging Face model for a table of stimuli.

    Parameters
    ----------
    model : str, path, transformers model or torch.nn.Module
        A Hugging Face id or local folder (loaded with ``AutoModel`` and its tokenizer /
        image processor / feature extractor), a loaded HF model (give ``processor=``), or
        any module (give ``preprocess=``).
    layers : "all", str, int, regex or list of them
        Hidden states (``embeddings``, ``layer.0``... or ``hidden_states.k``) of HF models;
        any named submodule through a forward hook. ``"all"``: every hidden state (HF) or
        every leaf module (plain modules). Indices index :attr:`layer_names`.
    pooling : {"mean", "last", "first", "cls", "none"}
        Over the tokens / patches / frames of each item; for narratives (``word`` items)
        over the sub-word tokens of each word.
    device : "auto", str or torch.device
        ``"auto"``: CUDA, then MPS, then CPU. The model is moved there.
    dtype : {"float32", "float16"}, optional
        dtype of the returned features (default float32). On CUDA the forward pass runs
        under bf16 autocast (fp16 where bf16 is not supported) unless ``amp=False``.
    batch_size : int or "auto"
        Windows / items per forward pass; ``"auto"`` starts large and halves on out-of-memory.
    context, stride : int, optional
        Sliding windows for long texts and narratives: every token sees at least
        ``context`` tokens of left context (or all since the start), windows advance by
        ``stride`` (default: as many as fit, at most ``context``).
    cache_dir : str, path or False, optional
        Feature store folder; default ``$BRAINALIGN_CACHE`` when set, else no cache.
    %(verbose)s
    processor : tokenizer / image processor / feature extractor, optional
    preprocess : callable, optional
        ``preprocess(list_of_contents) -> tensor or dict of tensors`` for plain modules.
        With a tokenizer (``processor=``) it receives the collated token tensors; without one,
        a plain module reads texts through ``preprocess`` directly, one text per batch (there
        is no token mask, so padding must never enter the pooled features).
    local_files_only, trust_remote_code : bool
        Passed to ``from_pretrained``.
    amp : bool, optional
        Mixed precision on CUDA (default True there, never on CPU).
    model_id : str, optional
        Name recorded in the provenance and cache key (default: the id / class name).

    Attributes
    ----------
    layer_names : list of str
        What ``layers="all"`` gives, in model order.
    device_ : torch.device
    batch_size_ : int
        The batch size used by the last ``extract`` (after halvings).

    Examples
    --------
    >>> fx = FeatureExtractor("path/to/minilm", layers=["layer.5"])  # doctest: +SKIP
    >>> feats = fx.extract(["a cat sat", "a dog ran"])  # doctest: +SKIP
    >>> feats["layer.5"].shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, model: Any, *, layers: Any = "all", pooling: str = "mean", device: Any = "auto",
                 dtype: Any = None, batch_size: int | str = "auto", context: int | None = None,
                 stride: int | None = None, cache_dir: Any = None, verbose: bool = False,
                 processor: Any = None, preprocess: Callable | None = None, local_files_only: bool = True,
                 trust_remote_code: bool = False, amp: bool | None = None, model_id: str | None = None) -> None:
        check_option("pooling", pooling, POOLINGS)
        name = "float32" if dtype is None else (dtype if isinstance(dtype, str) else getattr(dtype, "name", str(dtype)))
        self.dtype = np.dtype(check_option("dtype", name, ["float32", "float16"]))
        if not (batch_size == "auto" or (isinstance(batch_size, (int, np.integer)) and batch_size >= 1)):
            raise ValueError(f"batch_size must be a positive int or 'auto'; got {batch_size!r}.")
        self.handle = load_model(model, processor=processor, preprocess=preprocess,
                                 local_files_only=local_files_only, trust_remote_code=trust_remote_code,
                                 model_id=model_id)
        self.layers, self.pooling, self.batch_size = layers, pooling, batch_size
        self.context, self.stride, self.verbose, self.amp = context, stride, verbose, amp
        self.device_ = resolve_device(device)
        self.cache_dir = cache_dir
        self._refs = resolve_layers(self.handle, layers)
        self._weights_hash: str | None = None
        self.batch_size_: int | None = None

    # --- public attributes ---------------------------------------------------------
    @property
    def model(self):
        return self.handle.module

    @property
    def processor(self):
        return self.handle.processor

    @property
    def model_id(self) -> str:
        return self.handle.model_id

    @property
    def layer_names(self) -> list[str]:
        return self.handle.layer_names

    @property
    def weights_hash(self) -> str:
        """SHA-256 of the model's weights (computed once)."""
        if self._weights_hash is None:
            self._weights_hash = weights_hash(self.handle.module)
        return self._weights_hash

    def __repr__(self) -> str:
        return (f"FeatureExtractor({self.model_id!r}, layers={len(self._refs)}, pooling={self.pooling!r}, "
                f"device={str(self.device_)!r})")

    # --- planning ------------------------------------------------------------------
    def _plan(self, stim: Stimuli):
        table = stim.table
        mods = set(table["modality"])
        if len(mods) > 1:
            raise ValueError(f"Stimuli mix modalities {sorted(mods)}; extract each modality separately.")
        mod = mods.pop()
        h = self.handle
        family = {"word": "text", "video": "image"}.get(mod, mod)
        if h.kind == "hf" and h.modality is not None and h.modality != family and h.preprocess is None:
            raise ValueError(
                f"{type(h.module).__name__} takes {h.modality} inputs but the stimuli are {mod} items; use a "
                f"model for {family} (or pass preprocess= to build its inputs yourself)."
            )
        if mod == "text" and h.kind != "hf" and h.processor is None and h.preprocess is not None:
            # a plain module that reads text through its own preprocess (no tokenizer): without a
            # token mask, padding would enter the pooled features, so each text is its own batch
            units = [ItemUnit(int(r), 0, int(r), c) for r, c in zip(range(len(table)), table["text"].astype(str))]
            return "item", units, 0
        if mod in ("text", "word"):
            tok = h.processor
            if mod == "word":
                if self.pooling == "none":
                    raise ValueError("pooling='none' is not available for narratives (word items); use "
                                     "'mean', 'first' or 'last' (pooled over each word's sub-word tokens).")
                runs = table["run"] if "run" in table else pd.Series(0, index=table.index)
                units, empty = [], []
                for run, idx in table.groupby(runs, sort=False).indices.items():
                    u, e = plan_narrative(table["text"].astype(str).to_numpy()[idx].tolist(), np.asarray(idx), tok,
                                          max_length=h.max_length, context=self.context, stride=self.stride,
                                          run_label=run)
                    units += u
                    empty += e
                if empty:
                    warnings.warn(f"{len(empty)} words gave no token (e.g. row {empty[0]}); their features "
                                  "are zeros.", stacklevel=3)
                return "text", units, 0
            units, counts = plan_texts(table["text"].astype(str).tolist(), tok, max_length=h.max_length,
                                       context=self.context, stride=self.stride)
            return "text", units, int(counts.max())
        rows = np.arange(len(table))
        if mod in ("image", "video"):
            units = [ItemUnit(int(r), 0, None, c) for r, c in zip(rows, table["image"])]
            return "image", units, 0
        return "audio", audio_units(table, rows, h.processor if h.preprocess is None else None), 0

    def _processor_fingerprint(self) -> str | None:
        """SHA-256 of the tokenizer / processor configuration (computed once)."""
        if not hasattr(self, "_proc_fp"):
            import hashlib

            proc, fp = self.handle.processor, None
            if proc is not None:
                backend = getattr(proc, "backend_tokenizer", None)
                text = backend.to_str() if backend is not None else (
                    proc.to_json_string() if hasattr(proc, "to_json_string") else repr(proc))
                fp = hashlib.sha256(text.encode()).hexdigest()
            self._proc_fp = fp
        return self._proc_fp

    def _key_meta(self, stim_hash: str, compute: str) -> dict:
        fp = self._processor_fingerprint()
        pre = self.handle.preprocess
        return {"model_id": self.model_id, "weights_hash": self.weights_hash,
                "layers": [[r.name, r.source] for r in self._refs], "pooling": self.pooling,
                "context": self.context, "stride": self.stride, "processor": fp,
                "preprocess": None if pre is None else getattr(pre, "__qualname__", repr(pre)),
                "compute": compute, "dtype": str(self.dtype), "stimuli": stim_hash}

    # --- extraction ----------------------------------------------------------------
    @fill_doc
    def extract(self, stimuli: Any, *, sfreq: float | None = None, verbose: bool | None = None) -> Features:
        """Features of every requested layer for every stimulus item.

        Parameters
        ----------
        stimuli : Stimuli or list of str / images / waveforms
            One modality per call. Waveforms in a list need ``sfreq``.
        sfreq : float, optional
        %(verbose)s
            Overrides the extractor's ``verbose``.

        Returns
        -------
        Features
            layer name -> array of shape (n_items, n_features) (``(n_items, n_positions,
            n_features)`` with ``pooling="none"``), memory-mapped when cached; ``item_table``
            holds onset / duration / run of each item when the stimuli have them.
        """
        import torch

        stim = as_stimuli(stimuli, sfreq)
        verbose = self.verbose if verbose is None else verbose
        kind, units, n_positions = self._plan(stim)
        order = sorted(range(len(units)), key=lambda i: (str(getattr(units[i], "group", "")),
                                                          -getattr(units[i], "length", 0)))
        dev = self.device_
        amp = (dev.type == "cuda") if self.amp is None else bool(self.amp and dev.type == "cuda")
        amp_dtype = None
        if amp:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        compute = f"{dev.type}-{str(amp_dtype).replace('torch.', '') if amp else 'float32'}"
        root = self.cache_dir if self.cache_dir is not None else os.environ.get("BRAINALIGN_CACHE")
        store = FeatureStore(root) if root not in (None, False, "") else None
        stim_hash = stim.content_hash()
        meta = self._key_meta(stim_hash, compute) if store is not None else None
        key = FeatureStore.key(meta) if store is not None else None
        provenance = self._provenance(stim_hash, compute, key)
        if store is not None:
            cached = store.load(key, meta)
            if cached is not None:
                logger.info("Loaded features from the cache %s", store.root / key)
                return self._features(stim, cached, {**provenance, "from_cache": True})
            writer = store.writer(key, meta, len(stim), len(units), self.dtype)
        else:
            writer = MemoryWriter(len(stim), len(units), self.dtype)
        try:
            names = self._run(kind, units, order, writer, amp_dtype, n_positions, verbose)
            arrays = writer.finish(names)
        finally:
            writer.close()
        return self._features(stim, arrays, {**provenance, "from_cache": False})

    def _provenance(self, stim_hash: str, compute: str, key: str | None) -> dict:
        import torch
        import transformers

        from .. import __version__

        return {"model_id": self.model_id, "weights_hash": self.weights_hash, "layers": [r.name for r in self._refs],
                "pooling": self.pooling, "context": self.context, "stride": self.stride, "compute": compute,
                "dtype": str(self.dtype), "stimuli_hash": stim_hash, "cache_key": key,
                "versions": {"brainalign": __version__, "torch": torch.__version__,
                             "transformers": transformers.__version__}}

    def _features(self, stim: Stimuli, arrays: dict, provenance: dict) -> Features:
        if provenance.get("weights_hash") is None and self._weights_hash is not None:
            provenance["weights_hash"] = self._weights_hash
        cols = [c for c in _ITEM_COLUMNS if c in stim.table]
        return Features(arrays, items=stim.ids, item_table=stim.table[cols].copy(), provenance=provenance)

    def _run(self, kind, units, order, writer, amp_dtype, n_positions, verbose) -> list[str]:
        import torch

        module = self.handle.module
        dev = self.device_
        module.to(dev)
        module.eval()
        todo = [i for i in order if not writer.done[i]]
        if len(todo) < len(order):
            logger.info("Resuming: %d of %d units already in the store.", len(order) - len(todo), len(order))
        bs = _AUTO_START.get(dev.type, 64) if self.batch_size == "auto" else int(self.batch_size)
        hooks, captured, fired = self._install_hooks(module)
        names_in_order: list[str] | None = None
        bar = progress_bar(range(len(todo)), verbose=verbose, total=len(todo), desc="features")
        bar_iter = iter(bar) if verbose else None
        try:
            pos = 0
            while pos < len(todo):
                batch, cost = [], 0
                group = getattr(units[todo[pos]], "group", None)
                while pos + len(batch) < len(todo) and (not batch or cost + units[todo[pos + len(batch)]].cost <= bs):
                    u = units[todo[pos + len(batch)]]
                    if batch and getattr(u, "group", None) != group:
                        break
                    batch.append(todo[pos + len(batch)])
                    cost += u.cost
                try:
                    outs = self._forward(kind, [units[i] for i in batch], captured, fired, amp_dtype, n_positions)
                except Exception as err:  # noqa: BLE001 - OOM handling, everything else re-raised
                    if not _is_oom(err):
                        raise
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                    if self.batch_size != "auto" or bs == 1:
                        raise MemoryError(
                            f"Out of memory with a batch of {cost} windows/items on {dev}: {err}. Use a smaller "
                            "batch_size (or batch_size='auto', which halves it on out-of-memory), or a shorter "
                            "context."
                        ) from err
                    bs = max(1, min(bs, cost) // 2)
                    logger.info("Out of memory: batch size halved to %d.", bs)
                    continue
                rows_all, pooled = outs
                if names_in_order is None:
                    names_in_order = self._ordered_names(fired)
                for name, values in pooled.items():
                    writer.write(name, rows_all, values)
                writer.mark_done(np.asarray(batch))
                pos += len(batch)
                if bar_iter is not None:
                    for _ in batch:
                        next(bar_iter, None)
        finally:
            for hk in hooks:
                hk.remove()
            if hasattr(bar, "close"):
                bar.close()
        self.batch_size_ = bs
        if names_in_order is None:  # everything came from a resumed store
            names_in_order = list(getattr(writer, "layers", {})) or [r.name for r in self._refs]
        return names_in_order

    def _ordered_names(self, fired: list[str]) -> list[str]:
        hidden = [r.name for r in sorted((r for r in self._refs if r.source == "hidden"), key=lambda r: r.index)]
        hooked = [r.name for r in self._refs if r.source == "hook"]
        missing = [n for n in hooked if n not in fired]
        if missing:
            raise ValueError(f"The modules {missing[:5]} did not run during the forward pass, so they have no "
                             "features; pick layers the model uses.")
        return hidden + sorted(hooked, key=fired.index)

    def _install_hooks(self, module):
        captured: dict[str, Any] = {}
        fired: list[str] = []
        hooks = []
        mods = dict(module.named_modules())
        for ref in self._refs:
            if ref.source != "hook":
                continue

            def hook(_mod, _inp, out, name=ref.name):
                captured[name] = _first_tensor(out)
                if name not in fired:
                    fired.append(name)

            hooks.append(mods[ref.module].register_forward_hook(hook))
        return hooks, captured, fired

    def _inputs(self, kind, batch_units):
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
            inputs = collate_images([load_image(c) for c in contents], h.processor, h.preprocess)
            return inputs, None, rows, None
        inputs = collate_audio(contents, h.processor, h.preprocess)
        return inputs, None, rows, [len(c) for c in contents]

    def _forward(self, kind, batch_units, captured, fired, amp_dtype, n_positions):
        import torch

        dev = self.device_
        inputs, flat, rows, lengths = self._inputs(kind, batch_units)
        cuda = dev.type == "cuda"

        def move(t):
            if not isinstance(t, torch.Tensor):
                return t
            return (t.pin_memory() if cuda else t).to(dev, non_blocking=cuda)

        inputs = {k: move(v) for k, v in inputs.items()} if isinstance(inputs, dict) else move(inputs)
        autocast = torch.autocast(device_type="cuda", dtype=amp_dtype) if amp_dtype is not None \
            else contextlib.nullcontext()
        want_hidden = any(r.source == "hidden" for r in self._refs)
        captured.clear()
        with torch.inference_mode(), autocast:
            if self.handle.kind == "hf":
                out = self.handle.module(**inputs, output_hidden_states=want_hidden)
            else:
                out = self.handle.module(**inputs) if isinstance(inputs, dict) else self.handle.module(inputs)
            layer_out = {}  # hidden states in model order, then hooked modules
            if want_hidden:
                hs = getattr(out, "hidden_states", None)
                if hs is None or len(hs) != len(self.handle.hidden_names):
                    raise ValueError(f"{type(self.handle.module).__name__} returned "
                                     f"{None if hs is None else len(hs)} hidden states, expected "
                                     f"{len(self.handle.hidden_names)}; use module names as layers (hooks).")
                for r in sorted((r for r in self._refs if r.source == "hidden"), key=lambda r: r.index):
                    layer_out[r.name] = hs[r.index]
            for r in self._refs:
                if r.source == "hook" and r.name in captured:
                    layer_out[r.name] = captured[r.name]
            ids = inputs.get("input_ids") if isinstance(inputs, dict) else None
            tokens_shape = tuple(ids.shape) if ids is not None else None
            pooled = self._pool_all(kind, layer_out, flat, rows, lengths, n_positions, tokens_shape)
        return pooled.pop("__rows__"), pooled

    def _pool_all(self, kind, layer_out, flat, rows, lengths, n_positions, tokens_shape=None):
        out_dtype = resolve_dtype(self.dtype)
        result = {}
        result["__rows__"] = rows
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
            result[name] = t.to(out_dtype).cpu().numpy()
        return result


def _first_tensor(out):
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


def extract_features(model: Any, stimuli: Any, **kwargs: Any) -> Features:
    """Function form: ``FeatureExtractor(model, **kwargs).extract(stimuli)``.

    Examples
    --------
    >>> feats = extract_features("path/to/minilm", ["a cat"], layers=[-1])  # doctest: +SKIP
    """
    sfreq = kwargs.pop("sfreq", None)
    return FeatureExtractor(model, **kwargs).extract(stimuli, sfreq=sfreq)
