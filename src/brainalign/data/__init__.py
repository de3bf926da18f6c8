"""The three containers that flow through brainalign: ``BrainData``, ``Stimuli`` and ``Features``.

They are plain: arrays plus pandas tables of metadata (one row per sample, one row per
channel), in the spirit of rsatoolbox's ``Dataset`` and MNE's ``Epochs.metadata``. They do no
I/O and hold no model code. Selections return new objects; the data array is indexed (numpy
copies only the selected part) and the tables are sliced.
"""

from __future__ import annotations

from ._brain import BrainData
from ._features import Features
from ._stimuli import Stimuli

__all__ = ["BrainData", "Features", "Stimuli"]


