"""``FeatureExtractor``: every layer's representation of every stimulus, batch by batch."""

from __future__ import annotations

import os
import warnings
from collections import deque
from typing import Any, Callable

import numpy as np
import pandas as pd

from .._backend import resolve_device
from .._docs import fill_doc
from .._utils import check_option, logger, progress_bar
from ..data import Features, Stimuli
from ._fingerprint import Unfingerprintable, fingerprint
from ._forward import BatchRunner, FastPath, cache_keyword, find_blocks, is_oom, probe_causal
from ._models import load_model, resolve_layers, weights_hash
from ._pooling import POOLINGS
from ._store import FeatureStore, MemoryWriter
from ._text import count_text_tokens, iter_narrative_units, iter_text_units
from ._vision_audio import ItemUnit, audio_units

_AUTO_START = {"cuda": 256, "cpu": 64, "mps": 64}  # windows / items per batch with batch_size="auto"
_AUTO_TOKENS = {"cuda": 1 << 16, "cpu": 1 << 14, "mps": 1 << 14}  # and at most this many tokens
_ITEM_COLUMNS = ["stimulus_id", "modality", "onset", "duration", "run", "text", "sfreq"]
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


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
        odd = next((i for i, x in enumerate(items) if not isinstance(x, str)), None)
        if odd is not None:
            raise TypeError(f"stimuli mix strings and {type(items[odd]).__name__} (item {odd}: {items[odd]!r}); "
                            "give one kind of stimulus per call.")
        if not any(os.path.splitext(i)[1].lower() in _IMAGE_EXT for i in items):
            return Stimuli.from_texts(items)
        return Stimuli.from_images(items)
    if hasattr(first, "getdata") or hasattr(first, "__fspath__"):
        return Stimuli.from_images(items)
    arr = np.asarray(first) if not isinstance(first, (bytes, dict)) else np.asarray(None)
    if arr.ndim == 0 or arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(
            f"stimuli must be texts (str), images (arrays of shape (H, W) or (H, W, C), PIL images or image "
            f"paths) or waveforms (1-D arrays, with sfreq=); got {type(first).__name__} values such as {first!r}. "
            "For a table of stimuli build a brainalign.Stimuli.")
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
        every leaf module (plain modules). Indices index :attr:`layer_names`. When the
        deepest requested hidden state is not the model's last, the forward pass stops
        after it (the blocks above never run).
    pooling : {"mean", "last", "first", "cls", "none"}
        Over the tokens / patches / frames of each item; for narratives (``word`` items)
        over the sub-word tokens of each word.
    device : "auto", str or torch.device
        ``"auto"``: CUDA, then MPS, then CPU. The model is moved there (loaded straight
        there with ``device_map`` when ``accelerate`` is installed).
    dtype : {"float32", "float16"}, optional
        dtype of the returned features (default float32). On CUDA the forward pass runs
        under bf16 autocast (fp16 where bf16 is not supported) unless ``amp=False``.
    batch_size : int or "auto"
        Windows / items per forward pass; ``"auto"`` starts large (at most 16k tokens per
        batch on CPU, 64k on CUDA) and halves on out-of-memory.
    context, stride : int, optional
        Sliding windows (in tokens) for long texts and narratives. Windows are
        ``context + stride`` tokens long (plus the model's special tokens) and advance by
        ``stride``; the tokens a window adds are pooled from it, so the token at position
        ``p`` of a run sees ``min(p, context + k)`` tokens of left context, ``k`` being its
        offset among the ``stride`` new tokens of its window (at least ``context``, fewer
        than ``context + stride``). Default ``stride``: ``context`` for bidirectional
        models (BERT, MiniLM: a token then also sees up to ``stride - 1 - k`` tokens of
        right context), and for causal language models (GPT-2, Llama...: no right context
        ever) windows of ``max(2 * context, 1024)`` tokens, at most the model's length, so
        that only ``context`` tokens per window are computed twice. Causal models read a
        window longer than 256 tokens 256 tokens at a time with their key/value cache
        (the same numbers as one pass, in bounded memory). With ``context=None`` a text
        or a run must fit in the model's length and every token sees all tokens before it
        (and, for bidirectional models, after it).
    cache_dir : str, path or False, optional
        Feature store folder; default ``$BRAINALIGN_CACHE`` when set, else no cache.
    %(verbose)s
    processor : tokenizer / image processor / feature extractor, optional
    preprocess : callable, optional
        ``preprocess(list_of_contents) -> tensor or dict of tensors`` for plain modules.
        With a tokenizer (``processor=``) it receives the collated token tensors; without one,
        a plain module reads texts through ``preprocess`` directly, one text per batch (there
        is no token mask, so padding must never enter the pooled features). It is part of
        the cache key through its code, closure and the globals it reads.
    cache_key : str, optional
        Stands for ``preprocess`` in the cache key. Needed when ``preprocess`` holds a value
        brainalign cannot fingerprint (an open file, a compiled object...): change it
        whenever ``preprocess`` changes.
    local_files_only : bool, optional
        Passed to ``from_pretrained``. Default (None): True when ``HF_HUB_OFFLINE`` or
        ``TRANSFORMERS_OFFLINE`` is set, else False (the local cache first, a download
        when the model is missing), as in transformers.
    trust_remote_code : bool
        Passed to ``from_pretrained``; off unless you turn it on.
    torch_dtype : {"auto", "float32", "bfloat16", "float16"} or torch.dtype, optional
        dtype of the model's weights when it is loaded by id / folder (default:
        transformers' own default). ``"bfloat16"`` halves the memory of large models.
    model_kwargs : dict, optional
        More keyword arguments for ``AutoModel.from_pretrained`` (e.g.
        ``{"device_map": "auto"}`` to spread a model over several GPUs,
        ``{"attn_implementation": "sdpa"}``).
    amp : bool, optional
        Mixed precision on CUDA (default True there, never on CPU).
    model_id : str, optional
        Name recorded in the provenance and cache key (default: the id / class name).

    Attributes
    ----------
    layer_names : list of str
        What ``layers="all"`` gives, in model order.
    is_causal : bool
        Whether the model is a causal language model (probed once: changing the last token
        leaves every earlier token's hidden states unchanged).
    device_ : torch.device
    batch_size_ : int
        The batch size used by the last ``extract`` (after halvings).

    Notes
    -----
    Items with no token (an empty text, a word made of characters the tokenizer drops)
    get zero features and one warning per ``extract`` that counts them and names the first
    (again when read back from the cache); when no item has a token, ``extract`` raises.

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
                 processor: Any = None, preprocess: Callable | None = None, cache_key: str | None = None,
                 local_files_only: bool | None = None, trust_remote_code: bool = False, torch_dtype: Any = None,
                 model_kwargs: dict | None = None, amp: bool | None = None, model_id: str | None = None) -> None:
        check_option("pooling", pooling, POOLINGS)
        name = "float32" if dtype is None else (dtype if isinstance(dtype, str) else getattr(dtype, "name", str(dtype)))
        self.dtype = np.dtype(check_option("dtype", name, ["float32", "float16"]))
        if not (batch_size == "auto" or (isinstance(batch_size, (int, np.integer)) and batch_size >= 1)):
            raise ValueError(f"batch_size must be a positive int or 'auto'; got {batch_size!r}.")
        if cache_key is not None and not isinstance(cache_key, str):
            raise TypeError(f"cache_key must be a string; got {type(cache_key).__name__}.")
        self.device_ = resolve_device(device)
        self.handle = load_model(model, processor=processor, preprocess=preprocess,
                                 local_files_only=local_files_only, trust_remote_code=trust_remote_code,
                                 model_id=model_id, torch_dtype=torch_dtype, device=self.device_,
                                 model_kwargs=model_kwargs)
        self.layers, self.pooling, self.batch_size = layers, pooling, batch_size
        self.context, self.stride, self.verbose, self.amp = context, stride, verbose, amp
        self.cache_dir, self.cache_key = cache_dir, cache_key
        self._refs = resolve_layers(self.handle, layers)
        self._weights_hash: str | None = None
        self._fast: FastPath | None = None
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

    @property
    def is_causal(self) -> bool:
        """Whether the model is a causal language model (probed once, on first use)."""
        return self._fast_path().causal if self.handle.kind == "hf" else False

    def __repr__(self) -> str:
        return (f"FeatureExtractor({self.model_id!r}, layers={len(self._refs)}, pooling={self.pooling!r}, "
                f"device={str(self.device_)!r})")

    # --- model placement and fast path ---------------------------------------------
    def _dispatched(self) -> bool:
        devices = set(getattr(self.handle.module, "hf_device_map", {}).values() or [])
        return len(devices) > 1

    def _input_device(self):
        import torch

        if self._dispatched():
            emb = self.handle.module.get_input_embeddings()
            return emb.weight.device if emb is not None else torch.device(self.device_)
        return self.device_

    def _place(self) -> None:
        module = self.handle.module
        if not self._dispatched():
            module.to(self.device_)
        module.eval()

    def _fast_path(self) -> FastPath:
        if self._fast is None:
            h = self.handle
            self._place()
            causal = h.modality == "text" and probe_causal(h.module, self._input_device())
            cache_kw, use_cache_arg = cache_keyword(h.module)
            self._fast = FastPath(blocks=find_blocks(h.module, len(h.hidden_names) - 1), causal=causal,
                                  cache_kw=cache_kw if causal else None, use_cache_arg=use_cache_arg)
        return self._fast

    # --- planning ------------------------------------------------------------------
    def _plan(self, stim: Stimuli):
        """``(kind, units, n_positions, empty)``: ``units`` is produced lazily for texts, and the rows of
        items without a token are appended to ``empty`` as they are found."""
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
        empty: list[int] = []
        if mod == "text" and h.kind != "hf" and h.processor is None and h.preprocess is not None:
            # a plain module that reads text through its own preprocess (no tokenizer): without a
            # token mask, padding would enter the pooled features, so each text is its own batch
            texts = _texts(table).tolist()
            empty += [r for r, t in enumerate(texts) if not t.strip()]
            units = [ItemUnit(r, 0, r, t) for r, t in enumerate(texts) if t.strip()]
            return "item", units, 0, empty
        if mod in ("text", "word"):
            tok = h.processor
            causal = self._fast_path().causal if h.kind == "hf" else False
            texts = _texts(table)
            if mod == "word":
                if self.pooling == "none":
                    raise ValueError("pooling='none' is not available for narratives (word items); use "
                                     "'mean', 'first' or 'last' (pooled over each word's sub-word tokens).")
                runs = table["run"] if "run" in table else pd.Series(0, index=table.index)
                groups = table.groupby(runs, sort=False).indices

                def narrative():
                    for run, idx in groups.items():
                        yield from iter_narrative_units(texts[idx].tolist(), np.asarray(idx), tok,
                                                        max_length=h.max_length, context=self.context,
                                                        stride=self.stride, empty=empty,
                                                        run_label=run.item() if hasattr(run, "item") else run,
                                                        causal=causal)

                return "text", narrative(), 0, empty
            n_positions = 0
            if self.pooling == "none":
                n_positions = count_text_tokens(texts.tolist(), tok, context=self.context)
            units = iter_text_units(texts.tolist(), tok, max_length=h.max_length, context=self.context,
                                    stride=self.stride, empty=empty, causal=causal)
            return "text", units, n_positions, empty
        rows = np.arange(len(table))
        if mod in ("image", "video"):
            units = [ItemUnit(int(r), 0, None, c) for r, c in zip(rows, table["image"])]
        else:
            units = audio_units(table, rows, h.processor if h.preprocess is None else None)
        order = sorted(range(len(units)), key=lambda i: (str(units[i].group), -units[i].length))
        return ("image" if mod in ("image", "video") else "audio"), [units[i] for i in order], 0, empty

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

    def _preprocess_key(self) -> Any:
        pre = self.handle.preprocess
        if self.cache_key is not None:
            return {"cache_key": self.cache_key}
        if pre is None:
            return None
        try:
            return {"fingerprint": fingerprint(pre)}
        except Unfingerprintable as err:
            raise ValueError(
                f"The preprocess= callable {getattr(pre, '__qualname__', type(pre).__name__)!r} cannot be part of "
                f"the feature cache key ({err}), so cached features could go stale when it changes. Pass "
                "cache_key='<a name you change whenever preprocess changes>', or cache_dir=False."
            ) from None

    def _key_meta(self, stim_hash: str, compute: str) -> dict:
        return {"model_id": self.model_id, "weights_hash": self.weights_hash,
                "layers": [[r.name, r.source] for r in self._refs], "pooling": self.pooling,
                "context": self.context, "stride": self.stride, "processor": self._processor_fingerprint(),
                "preprocess": self._preprocess_key(), "compute": compute, "dtype": str(self.dtype),
                "stimuli": stim_hash}

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
        dev = self.device_
        amp = (dev.type == "cuda") if self.amp is None else bool(self.amp and dev.type == "cuda")
        amp_dtype = None
        if amp:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        weights = next((p.dtype for p in self.handle.module.parameters() if p.is_floating_point()), torch.float32)
        compute = f"{dev.type}-{str(amp_dtype if amp else weights).replace('torch.', '')}"
        root = self.cache_dir if self.cache_dir is not None else os.environ.get("BRAINALIGN_CACHE")
        store = FeatureStore(root) if root not in (None, False, "") else None
        stim_hash = stim.content_hash()
        if store is None:
            arrays, notes = self._compute(stim, MemoryWriter(len(stim), self.dtype), amp_dtype, verbose)
            return self._features(stim, arrays, self._provenance(stim_hash, compute, None, False))
        meta = self._key_meta(stim_hash, compute)
        key = FeatureStore.key(meta)
        with store.lock(key):
            cached = store.load(key, meta)
            if cached is not None:
                logger.info("Loaded features from the cache %s", store.root / key)
                self._warn_empty(stim, store.notes(key), stacklevel=3)
                return self._features(stim, cached, self._provenance(stim_hash, compute, key, True))
            writer = store.writer(key, meta, len(stim), self.dtype)
            arrays, notes = self._compute(stim, writer, amp_dtype, verbose)
        return self._features(stim, arrays, self._provenance(stim_hash, compute, key, False))

    def _compute(self, stim: Stimuli, writer, amp_dtype, verbose) -> tuple[dict, dict]:
        try:
            kind, units, n_positions, empty = self._plan(stim)
            names = self._run(kind, units, writer, amp_dtype, n_positions, verbose)
            notes = {"empty_rows": sorted(set(empty)), "what": "words" if stim.is_narrative else "items"}
            if not writer.layers:
                writer.abort()
                first = stim.table["text"].iloc[0] if "text" in stim.table else None
                raise ValueError(f"None of the {len(stim)} {notes['what']} gives a token (row 0: {first!r}): "
                                 "there is nothing to extract. Check the texts and the tokenizer.")
            arrays = writer.finish(names, notes)
        except BaseException:
            if not writer.done.any():
                writer.abort()  # nothing worth resuming (e.g. a text refused before any batch ran)
            raise
        finally:
            writer.close()
        self._warn_empty(stim, notes, stacklevel=4)
        return arrays, notes

    def _warn_empty(self, stim: Stimuli, notes: dict, stacklevel: int) -> None:
        rows = notes.get("empty_rows") or []
        if rows:
            text = stim.table["text"].iloc[rows[0]] if "text" in stim.table else None
            warnings.warn(f"{len(rows)} {notes.get('what', 'items')} gave no token (e.g. row {rows[0]}); their "
                          f"features are zeros (row {rows[0]} is {text!r}).", stacklevel=stacklevel)

    def _provenance(self, stim_hash: str, compute: str, key: str | None, from_cache: bool) -> dict:
        import torch
        import transformers

        from .. import __version__

        fast = self._fast
        return {"model_id": self.model_id, "weights_hash": self.weights_hash, "layers": [r.name for r in self._refs],
                "pooling": self.pooling, "context": self.context, "stride": self.stride, "compute": compute,
                "causal": None if fast is None else fast.causal, "dtype": str(self.dtype),
                "stimuli_hash": stim_hash, "cache_key": key, "from_cache": from_cache,
                "versions": {"brainalign": __version__, "torch": torch.__version__,
                             "transformers": transformers.__version__}}

    def _features(self, stim: Stimuli, arrays: dict, provenance: dict) -> Features:
        cols = [c for c in _ITEM_COLUMNS if c in stim.table]
        return Features(arrays, items=stim.ids, item_table=stim.table[cols].copy(), provenance=provenance)

    def _start_batch(self, kind: str, first_unit) -> int:
        dev = self.device_.type
        if self.batch_size != "auto":
            return int(self.batch_size)
        bs = _AUTO_START.get(dev, 64)
        if kind == "text" and first_unit is not None:
            bs = max(1, min(bs, _AUTO_TOKENS.get(dev, 1 << 14) // max(first_unit.length, 1)))
        return bs

    def _run(self, kind, units, writer, amp_dtype, n_positions, verbose) -> list[str]:
        import torch

        self._place()
        fast = self._fast_path() if self.handle.kind == "hf" else None
        dev = self.device_
        source = (u for u in units if not writer.done[u.rows].all())
        queue: deque = deque()
        queued = 0  # cost of the queue
        bs = None
        bar = progress_bar(range(writer.n_rows), verbose=verbose, total=writer.n_rows, desc="features")
        if writer.done.any():
            logger.info("Resuming: %d of %d rows already in the store.", int(writer.done.sum()), writer.n_rows)
        runner = BatchRunner(self.handle, self._refs, self._input_device(), self.pooling, self.dtype, amp_dtype,
                             fast)
        seen_any = False
        with runner:
            try:
                while True:
                    while bs is None or queued < bs:
                        unit = next(source, None)
                        if unit is None:
                            break
                        queue.append(unit)
                        queued += unit.cost
                        if bs is None:
                            bs = self._start_batch(kind, unit)
                    if not queue:
                        break
                    batch, cost, group = [], 0, getattr(queue[0], "group", None)
                    for u in queue:
                        if batch and (cost + u.cost > bs or getattr(u, "group", None) != group):
                            break
                        batch.append(u)
                        cost += u.cost
                    try:
                        rows_all, pooled = runner(kind, batch, n_positions)
                    except Exception as err:  # noqa: BLE001 - OOM handling, everything else re-raised
                        if not is_oom(err):
                            raise
                        if dev.type == "cuda":
                            torch.cuda.empty_cache()
                        if self.batch_size != "auto" or bs == 1:
                            raise MemoryError(
                                f"Out of memory with a batch of {cost} windows/items on {dev}: {err}. Use a "
                                "smaller batch_size (or batch_size='auto', which halves it on out-of-memory), "
                                "or a shorter context."
                            ) from err
                        bs = max(1, min(bs, cost) // 2)
                        logger.info("Out of memory: batch size halved to %d.", bs)
                        continue
                    for name, values in pooled.items():
                        writer.write(name, rows_all, values)
                    writer.mark_done(rows_all)
                    seen_any = True
                    for _ in batch:
                        queued -= queue.popleft().cost
                    if hasattr(bar, "update"):
                        bar.update(len(rows_all))
            finally:
                if hasattr(bar, "close"):
                    bar.close()
        self.batch_size_ = bs
        if seen_any:
            return runner.ordered_names()
        return list(writer.layers)  # everything came from a resumed store (or nothing had a token)


def _texts(table: pd.DataFrame) -> np.ndarray:
    """The text column as strings; a missing text (None, NaN) is an empty text."""
    col = table["text"]
    return col.where(col.notna(), "").astype(str).to_numpy()


def extract_features(model: Any, stimuli: Any, **kwargs: Any) -> Features:
    """Function form: ``FeatureExtractor(model, **kwargs).extract(stimuli)``.

    Examples
    --------
    >>> feats = extract_features("path/to/minilm", ["a cat"], layers=[-1])  # doctest: +SKIP
    """
    sfreq = kwargs.pop("sfreq", None)
    return FeatureExtractor(model, **kwargs).extract(stimuli, sfreq=sfreq)
