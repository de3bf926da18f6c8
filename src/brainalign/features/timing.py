"""Time alignment of features with recordings: resampling, delays, the HRF, design matrices.

* :func:`align_to` builds the design matrix of a :class:`~brainalign.BrainData` from
  :class:`~brainalign.Features` — the one design path of brainalign, for event designs (one
  item per sample), timed events (several per sample) and continuous designs (words,
  phonemes, frames: Lanczos resampling or sum / mean per sample bin), with trimming,
  z-scoring and delays within runs. It returns one Bunch (``X``, ``columns``, ``bands``,
  ``groups``, ``keep``, ``samples``, ``Y``).
* :func:`lanczos_resample` moves word-rate or frame-rate features onto the fMRI TR grid
  (or any grid) with a Lanczos-windowed sinc low-pass (Huth et al., 2016).
* :func:`make_delays` stacks delayed copies of a design matrix (FIR model of the
  hemodynamic response in samples, or M/EEG lags in seconds), zero-padded at run
  boundaries: the one definition of a delayed design (``Delayer`` and ``encoding.TRF``
  use the same lags and column order).
* :func:`hrf`, :func:`hrf_response` and :func:`convolve_hrf`: SPM's canonical haemodynamic
  response, sampled, for one event of any duration, and convolved with a design within runs.
"""

from __future__ import annotations

from ._timing_align import align_to
from ._timing_delays import convolve_hrf, hrf, hrf_response, make_delays
from ._timing_resample import lanczos_kernel, lanczos_resample

__all__ = [
    "align_to",
    "convolve_hrf",
    "hrf",
    "hrf_response",
    "lanczos_kernel",
    "lanczos_resample",
    "make_delays",
]
