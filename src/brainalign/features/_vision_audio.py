"""Images, audio and plain-module inputs: loading, preprocessing and batching.

Images are arrays ``(H, W[, C])``, PIL images or file paths, preprocessed by the model's
image processor (which resizes them). Without a processor, or with one that does not
resize, images of different sizes cannot be batched and are refused with their sizes.

Audio waveforms carry a sampling rate (``sfreq`` column). When it differs from the
processor's ``sampling_rate`` the waveform is resampled with
:func:`scipy.signal.resample_poly` and a warning says so (error only when no rational
ratio is close enough). Feature extractors that return an attention mask get padded
batches and the valid frames are pooled; those that do not (wav2vec2 with group norm,
where padding changes the output) get batches of equal-length waveforms only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass
class ItemUnit:
    row: int
    length: int
    group: Any  # batches never mix groups
    content: Any

    cost: int = 1

    @property
    def rows(self) -> np.ndarray:
        return np.array([self.row])


def load_image(item: Any):
    """A PIL image (paths are opened and converted to RGB) or a numpy array."""
    if isinstance(item, (str, bytes)) or hasattr(item, "__fspath__"):
        from PIL import Image

        with Image.open(item) as img:
            return img.convert("RGB")
    if hasattr(item, "getdata"):
        return item
    arr = np.asarray(item)
    if arr.ndim not in (2, 3):
        raise ValueError(f"An image must be an array of shape (H, W) or (H, W, C); got shape {arr.shape}.")
    return arr


def _size(img: Any) -> tuple:
    return tuple(img.size[::-1]) if hasattr(img, "getdata") else tuple(np.asarray(img).shape[:2])


def collate_images(images: list, processor: Any, preprocess: Any):
    """Batch of images -> model inputs (dict or tensor)."""
    if preprocess is not None:
        return preprocess(images)
    if processor is not None:
        try:
            return dict(processor(images=images, return_tensors="pt"))
        except Exception as err:  # noqa: BLE001 - re-raised with the sizes
            sizes = sorted({_size(i) for i in images})
            raise ValueError(
                f"The image processor {type(processor).__name__} could not batch these images "
                f"(sizes {sizes[:5]}): {err}. Resize them to one size, or use a processor that resizes "
                "(do_resize=True)."
            ) from err
    return stack_arrays(images, "images")


def stack_arrays(items: list, what: str):
    import torch

    arrays = [np.asarray(i, dtype=np.float32) for i in items]
    shapes = sorted({a.shape for a in arrays})
    if len(shapes) > 1:
        raise ValueError(
            f"Cannot batch {what} of different shapes {shapes[:5]} without a processor; resize them to "
            "one size or pass preprocess=<callable that returns a batch tensor>."
        )
    return torch.from_numpy(np.stack(arrays))


def resample_audio(wave: np.ndarray, sfreq: float, target: float) -> np.ndarray:
    from scipy.signal import resample_poly

    ratio = Fraction(float(target) / float(sfreq)).limit_denominator(1000)
    if abs(float(ratio) - target / sfreq) > 1e-6 * target / sfreq:
        raise ValueError(
            f"Cannot resample audio from {sfreq:g} Hz to the processor's {target:g} Hz with a rational "
            f"ratio (closest {ratio}); resample the waveforms yourself."
        )
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)


def audio_units(table, rows: np.ndarray, processor: Any) -> list[ItemUnit]:
    target = getattr(processor, "sampling_rate", None)
    padded = bool(getattr(processor, "return_attention_mask", True)) if processor is not None else False
    units, resampled = [], set()
    for row, (_, rec) in zip(rows, table.iterrows()):
        wave = np.asarray(rec["audio"], dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"Audio item {rec['stimulus_id']!r} must be a mono 1-D waveform; got shape {wave.shape}.")
        sf = float(rec["sfreq"]) if "sfreq" in rec and rec["sfreq"] == rec["sfreq"] else None
        if target is not None and sf is not None and abs(sf - target) > 1e-9:
            wave = resample_audio(wave, sf, float(target))
            resampled.add(sf)
        units.append(ItemUnit(int(row), len(wave), None if padded else len(wave), wave))
    if resampled:
        warnings.warn(
            f"Audio sampled at {sorted(resampled)} Hz was resampled to the processor's {target:g} Hz "
            "with scipy.signal.resample_poly.", stacklevel=3)
    return units


def collate_audio(waves: list, processor: Any, preprocess: Any):
    if preprocess is not None:
        return preprocess(waves)
    if processor is None:
        return stack_arrays(waves, "waveforms")
    kwargs = {"return_tensors": "pt", "padding": True}
    if getattr(processor, "sampling_rate", None) is not None:
        kwargs["sampling_rate"] = processor.sampling_rate
    return dict(processor(waves, **kwargs))


def valid_frames(module: Any, lengths: list[int], n_frames: int) -> np.ndarray | None:
    """Frames per item after the model's feature encoder (None when all are valid)."""
    if len(set(lengths)) == 1:
        return None
    fn = getattr(module, "_get_feat_extract_output_lengths", None)
    if fn is None:
        return None
    import torch

    return np.minimum(np.asarray(fn(torch.tensor(lengths))), n_frames)
