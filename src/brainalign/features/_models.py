"""Model loading and layer discovery for the feature extractor.

A model reaches the extractor in one of three forms:

* a Hugging Face id or a local folder, loaded with ``AutoConfig`` + ``AutoModel`` and the
  matching preprocessing class (``AutoTokenizer`` for text, ``AutoImageProcessor`` for images,
  ``AutoFeatureExtractor`` for audio, chosen from the model's ``main_input_name``);
* an already loaded ``transformers.PreTrainedModel`` with its tokenizer / processor;
* any ``torch.nn.Module`` with a ``preprocess`` callable (list of contents -> tensor or dict).

Hugging Face models expose their hidden states (``output_hidden_states=True``), named
``embeddings``, ``layer.0``, ..., ``layer.{L-1}`` (aliases ``hidden_states.k``); every named
submodule is also reachable through a forward hook. Plain modules expose their named
submodules (``"all"`` = the leaf modules).

Loading follows transformers: the local cache first, a download only when the environment
allows it. ``local_files_only=None`` (the default) means True when ``HF_HUB_OFFLINE`` or
``TRANSFORMERS_OFFLINE`` is set to a true value (``1``, ``ON``, ``YES``, ``TRUE``), else False.
``trust_remote_code`` is off unless asked for. Large models load as their users load them:
``torch_dtype`` (e.g. ``"bfloat16"``) is passed to ``from_pretrained`` (as ``dtype`` since
transformers 4.56), weights go straight to the accelerator with ``device_map`` when
``accelerate`` is installed, and ``low_cpu_mem_usage=True`` is passed where transformers still
takes it (before 5.0, with accelerate).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .._utils import logger

_MODALITY_OF_INPUT = {
    "input_ids": "text",
    "pixel_values": "image",
    "input_values": "audio",
    "input_features": "audio",
}


@dataclass
class ModelHandle:
    """Everything the extractor needs to know about a model."""

    module: Any
    model_id: str
    kind: str  # "hf" or "torch"
    modality: str | None  # "text", "image", "audio" or None (plain module)
    processor: Any = None
    preprocess: Callable | None = None
    hidden_names: list[str] = field(default_factory=list)
    max_length: int | None = None

    @property
    def module_names(self) -> list[str]:
        return [name for name, _ in self.module.named_modules() if name]

    @property
    def leaf_names(self) -> list[str]:
        return [name for name, mod in self.module.named_modules() if name and not any(True for _ in mod.children())]

    @property
    def layer_names(self) -> list[str]:
        """What ``layers="all"`` means, in model order."""
        return list(self.hidden_names) if self.kind == "hf" else self.leaf_names


@dataclass(frozen=True)
class LayerRef:
    name: str
    source: str  # "hidden" or "hook"
    index: int = -1  # hidden-state index
    module: str = ""  # module name for hooks


def _is_hf_model(obj: Any) -> bool:
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, PreTrainedModel)


def offline_mode() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is set to a true value."""
    return any(os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve_local_files_only(local_files_only: bool | None) -> bool:
    """``local_files_only`` as given, or (None) whether the environment asks for offline mode.

    Examples
    --------
    >>> resolve_local_files_only(True)
    True
    """
    if local_files_only is None:
        return offline_mode()
    if not isinstance(local_files_only, (bool, int)):
        raise TypeError(f"local_files_only must be True, False or None; got {local_files_only!r}.")
    return bool(local_files_only)


_WEIGHT_DTYPES = ["auto", "float32", "float16", "bfloat16"]


def check_torch_dtype(torch_dtype: Any) -> Any:
    """None, "auto", a floating torch dtype or its name -> what ``from_pretrained`` takes."""
    if torch_dtype is None or torch_dtype == "auto":
        return torch_dtype
    import torch

    if isinstance(torch_dtype, torch.dtype):
        torch_dtype = str(torch_dtype).replace("torch.", "")
    from .._utils import check_option

    return getattr(torch, check_option("torch_dtype", str(torch_dtype), _WEIGHT_DTYPES))


def load_model(model: Any, *, processor: Any = None, preprocess: Callable | None = None,
               local_files_only: bool | None = None, trust_remote_code: bool = False,
               revision: str | None = None, model_id: str | None = None, torch_dtype: Any = None,
               device: Any = None, model_kwargs: dict | None = None) -> ModelHandle:
    """Turn a model spec (id, path, HF model, nn.Module) into a :class:`ModelHandle`."""
    import torch

    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        name = str(model if not isinstance(model, bytes) else model.decode())
        module, loaded_proc = _load_hf(name, local_files_only=resolve_local_files_only(local_files_only),
                                       trust_remote_code=trust_remote_code, revision=revision,
                                       torch_dtype=check_torch_dtype(torch_dtype), device=device,
                                       model_kwargs=model_kwargs)
        processor = processor if processor is not None else loaded_proc
        return _hf_handle(module, processor, preprocess, model_id or name)
    if torch_dtype is not None or model_kwargs:
        raise ValueError(
            "torch_dtype= and model_kwargs= apply when the model is loaded from an id or a folder; this model "
            f"({type(model).__name__}) is already loaded: convert it yourself (e.g. model.to(torch.bfloat16)).")
    if _is_hf_model(model):
        mid = model_id or str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
        return _hf_handle(model, processor, preprocess, mid)
    if isinstance(model, torch.nn.Module):
        return ModelHandle(module=model, model_id=model_id or type(model).__name__, kind="torch",
                           modality=None, processor=processor, preprocess=preprocess)
    raise TypeError(
        f"model must be a Hugging Face id or local folder (str), a transformers model or a "
        f"torch.nn.Module; got {type(model).__name__}."
    )


def _weight_kwargs(torch_dtype: Any, device: Any) -> dict:
    """``dtype`` / ``torch_dtype``, ``device_map`` and ``low_cpu_mem_usage`` for this transformers."""
    import transformers

    major, minor = (int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])
    kwargs: dict = {}
    if torch_dtype is not None:
        kwargs["dtype" if (major, minor) >= (4, 56) else "torch_dtype"] = torch_dtype
    has_accelerate = importlib.util.find_spec("accelerate") is not None
    if has_accelerate and device is not None and getattr(device, "type", "cpu") != "cpu":
        kwargs["device_map"] = {"": str(device)}
    if has_accelerate and major < 5:
        kwargs["low_cpu_mem_usage"] = True
    return kwargs


def _load_hf(name: str, *, local_files_only: bool, trust_remote_code: bool, revision: str | None,
             torch_dtype: Any = None, device: Any = None, model_kwargs: dict | None = None):
    from transformers import AutoConfig, AutoModel

    kwargs = dict(local_files_only=local_files_only, trust_remote_code=trust_remote_code)
    if revision is not None:
        kwargs["revision"] = revision
    model_kwargs = {**_weight_kwargs(torch_dtype, device), **(model_kwargs or {})}
    try:
        config = AutoConfig.from_pretrained(name, **kwargs)
        module = AutoModel.from_pretrained(name, config=config, **kwargs, **model_kwargs)
    except (OSError, ValueError) as err:
        how = ("unset HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE (or pass local_files_only=False) on a machine with "
               "internet access" if local_files_only else "check the id, your internet access and your token")
        raise OSError(
            f"Could not load the model {name!r} (local_files_only={local_files_only}, "
            f"trust_remote_code={trust_remote_code}): {err}\nGive a local folder with config.json "
            f"and weights, an id already in the local Hugging Face cache, or {how}."
        ) from err
    module.eval()
    processor = _load_processor(name, getattr(module, "main_input_name", "input_ids"), kwargs)
    return module, processor


def _load_processor(name: str, main_input: str, kwargs: dict) -> Any:
    import transformers

    order = {
        "input_ids": ["AutoTokenizer"],
        "pixel_values": ["AutoImageProcessor"],
        "input_values": ["AutoFeatureExtractor"],
        "input_features": ["AutoFeatureExtractor"],
    }.get(main_input, []) + ["AutoProcessor"]
    errors = []
    for cls_name in order:
        try:
            return getattr(transformers, cls_name).from_pretrained(name, **kwargs)
        except Exception as err:  # noqa: BLE001 - try the next class, report all below
            errors.append(f"{cls_name}: {err}")
    logger.warning("No tokenizer/processor found for %r (%s); pass processor= or preprocess=.",
                   name, "; ".join(errors))
    return None


def _hf_handle(module: Any, processor: Any, preprocess: Callable | None, model_id: str) -> ModelHandle:
    config = module.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_layers = getattr(config, "num_hidden_layers", None) or getattr(text_config, "num_hidden_layers", None)
    if n_layers is None:
        raise ValueError(
            f"Cannot tell how many hidden states {type(module).__name__} returns (its config has no "
            "num_hidden_layers); pass layers= as module names to use forward hooks instead."
        )
    modality = _MODALITY_OF_INPUT.get(getattr(module, "main_input_name", "input_ids"))
    max_length = None
    for attr in ("max_position_embeddings", "n_positions"):
        value = getattr(text_config, attr, None)
        if isinstance(value, int) and value > 0:
            max_length = value
            break
    tok_max = getattr(processor, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        max_length = min(max_length, tok_max) if max_length else tok_max
    names = ["embeddings"] + [f"layer.{i}" for i in range(int(n_layers))]
    module.eval()
    return ModelHandle(module=module, model_id=model_id, kind="hf", modality=modality, processor=processor,
                       preprocess=preprocess, hidden_names=names, max_length=max_length)


# --------------------------------------------------------------------------- layers
_REGEX_CHARS = set("\\^$*+?[](){}|")


def resolve_layers(handle: ModelHandle, layers: Any) -> list[LayerRef]:
    """``"all"``, names, indices (into ``handle.layer_names``) or a regex -> LayerRefs.

    Names are looked up first among the hidden states (and their ``hidden_states.k``
    aliases), then among the module names (forward hooks). A regex (a string with regex
    characters or a compiled pattern) is matched in full against the hidden-state names,
    then against the module names. Unknown names raise a KeyError listing close matches.
    """
    hidden = list(handle.hidden_names)
    modules = handle.module_names
    default = handle.layer_names
    if isinstance(layers, str) and layers == "all":
        specs: list[Any] = list(default)
    elif isinstance(layers, (str, int, re.Pattern)):
        specs = [layers]
    else:
        specs = list(layers)
    if not specs:
        raise ValueError("layers= is empty; give 'all', names, indices or a regex.")
    refs: list[LayerRef] = []
    for spec in specs:
        for ref in _resolve_one(spec, hidden, modules, default):
            if ref not in refs:
                refs.append(ref)
    return refs


def _hidden_ref(hidden: list[str], name: str) -> LayerRef:
    return LayerRef(name=name, source="hidden", index=hidden.index(name))


def _resolve_one(spec: Any, hidden: list[str], modules: list[str], default: list[str]) -> list[LayerRef]:
    if isinstance(spec, bool):
        raise TypeError(f"A layer must be a name, an index or a regex; got {spec!r}.")
    if isinstance(spec, int) or (hasattr(spec, "__index__") and not isinstance(spec, str)):
        i = int(spec)
        if not -len(default) <= i < len(default):
            raise IndexError(f"Layer index {i} is out of range for {len(default)} layers {default[:5]}...")
        return _resolve_one(default[i], hidden, modules, default)
    if isinstance(spec, str):
        if spec in hidden:
            return [_hidden_ref(hidden, spec)]
        m = re.fullmatch(r"hidden_states\.(\d+)", spec)
        if m and hidden and int(m.group(1)) < len(hidden):
            return [_hidden_ref(hidden, hidden[int(m.group(1))])]
        if spec in modules:
            return [LayerRef(name=spec, source="hook", module=spec)]
        if not (_REGEX_CHARS & set(spec)):
            raise KeyError(_unknown_layer(spec, hidden, modules, default))
        try:
            pattern = re.compile(spec)
        except re.error:
            raise KeyError(_unknown_layer(spec, hidden, modules, default)) from None
    elif isinstance(spec, re.Pattern):
        pattern = spec
    else:
        raise TypeError(f"A layer must be a name, an index or a regex; got {type(spec).__name__}.")
    found = [_hidden_ref(hidden, n) for n in hidden if pattern.fullmatch(n)]
    if not found:
        found = [LayerRef(name=n, source="hook", module=n) for n in modules if pattern.fullmatch(n)]
    if not found:
        raise KeyError(f"The layer pattern {pattern.pattern!r} matches no layer. "
                       + _unknown_layer(pattern.pattern, hidden, modules, default))
    return found


def _shown(names: list[str], n: int = 30) -> str:
    return str(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _unknown_layer(spec: str, hidden: list[str], modules: list[str], default: list[str]) -> str:
    """The unknown name, close matches, every layer of ``layers="all"`` and how to reach the others."""
    others = [m for m in modules if m not in default]
    close = difflib.get_close_matches(str(spec), default + others, n=5, cutoff=0.4)
    msg = f"Unknown layer {spec!r}." + (f" Close matches: {close}." if close else "")
    msg += f" Available layers (what layers='all' gives): {_shown(default)}."
    if others:
        msg += (f" Any of the model's {len(others)} other module names works too (through a forward hook), "
                f"e.g. {others[:5]}.")
    return msg


# --------------------------------------------------------------------------- weights hash
def weights_hash(module: Any) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of every tensor of the state dict.

    Exact (any change to any weight changes the hash) and linear in the model size:
    about 1 s per GB on one CPU core, computed once per extractor and only when a cache
    is used. Tensors on an accelerator are copied to the host one at a time.
    """
    import torch

    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        if t.numel() == 0:
            continue
        t = t.to("cpu").contiguous()
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()
