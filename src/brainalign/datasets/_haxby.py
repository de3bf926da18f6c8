"""The bundled Haxby et al. (2001) block-design fMRI subset (PyMVPA's subject 1)."""

from __future__ import annotations

import numpy as np

from .._utils import Bunch, check_option
from ._registry import dataset_path

__all__ = ["load_haxby2001"]

_N_RUNS = 12
_CITATION = (
    "Haxby JV, Gobbini MI, Furey ML, Ishai A, Schouten JL, Pietrini P (2001). Distributed and overlapping "
    "representations of faces and objects in ventral temporal cortex. Science 293(5539):2425-2430. "
    "doi:10.1126/science.1063736. Subset distributed with PyMVPA: Hanke M et al. (2009) "
    "Neuroinformatics 7(1):37-53."
)


def load_haxby2001(*, resolution: str = "1slice", standardize="zscore") -> Bunch:
    """Load the bundled Haxby (2001) object-category fMRI: 12 runs x 121 volumes, TR 2.5 s.

    One subject viewed grey-scale pictures of 8 categories (face, house, cat, shoe,
    scissors, bottle, chair, scrambledpix) in blocks of 22.5 s separated by rest, one
    block per category per run. The data are read run by run with
    :func:`~brainalign.datasets.load_fmri` from the OpenfMRI-style tree
    (``haxby2001/sub001/BOLD/task001_runNNN/``) with each run's ``bold_events.tsv``.

    Parameters
    ----------
    resolution : {"1slice", "25mm"}
        ``"1slice"``: the posterior half of one axial slice at 3.1 x 3.75 x 3.75 mm,
        1452 x 530 voxels in ``mask.nii.gz``. No ROI labels: the subset's ROI masks live
        on the 25 mm grid, and resampled onto the slice they label no ventral-temporal
        voxel (see Notes). ``"25mm"``: the whole brain
        downsampled to 25 mm voxels, 1452 x 129 voxels in ``masks/25mm/brain.nii.gz``,
        with ``roi = "vt"`` for the one ventral-temporal voxel of ``vt.nii.gz`` and a
        ``hoc`` column with the integer label of ``hoc.nii.gz`` (0 = none).
    standardize : {"zscore", "psc", False, None}
        Per run, as in ``load_fmri``.

    Returns
    -------
    Bunch with
        brain : BrainData of shape (1452, n_voxels)
            ``samples``: ``run`` (0-11), ``volume``, ``onset``, ``stimulus_id`` and
            ``trial_type`` of the block (None at rest) and ``category`` (``"rest"``
            between blocks), equal to PyMVPA's ``attributes_literal.txt``.
        stimuli : Stimuli
            The 8 categories (one item per category, modality text).
        events : DataFrame of shape (96, n_columns)
            The blocks: onset, duration, trial_type, run, stimulus_id.
        citation, path, description : str

    Notes
    -----
    ROI resampling was checked (``nilearn.image.resample_to_img``, nearest neighbour, onto
    the slice grid): the 25 mm ``vt`` mask holds a single voxel, centred at z = -12.5 mm,
    and the slice lies at z = 0, so no slice voxel is ventral-temporal; the ``hoc`` label
    image gives labels 42 (110 voxels) and 43 (53 voxels) to the slice, and the time
    series of the slice voxels do not correlate with those of the 25 mm voxels at the same
    world coordinates, so the two grids are not in register. Hence no ``roi`` column at
    "1slice"; the "25mm" vt ROI is one voxel, too few for ROI comparisons.

    Examples
    --------
    >>> haxby = load_haxby2001()  # doctest: +SKIP
    >>> haxby.brain.shape  # doctest: +SKIP
    (1452, 530)
    """
    import nibabel as nib
    import pandas as pd

    from ._events import read_events
    from ._fmri import load_fmri

    check_option("resolution", resolution, ["1slice", "25mm"])
    root = dataset_path("haxby2001")
    sub = root / "haxby2001" / "sub001"
    run_dirs = [sub / "BOLD" / f"task001_run{r:03d}" for r in range(1, _N_RUNS + 1)]
    name = "bold_1slice.nii.gz" if resolution == "1slice" else "bold_25mm.nii.gz"
    bolds = [d / name for d in run_dirs]
    events = [d / "bold_events.tsv" for d in run_dirs]
    runs = list(range(_N_RUNS))
    stimuli, table = read_events(events, run=runs)
    if resolution == "1slice":
        brain = load_fmri(bolds, mask=root / "mask.nii.gz", events=(stimuli, table), run=runs,
                          standardize=standardize, subject="subj1")
    else:
        masks = sub / "masks" / "25mm"
        brain = load_fmri(bolds, mask=masks / "brain.nii.gz", atlas={"vt": masks / "vt.nii.gz"},
                          events=(stimuli, table), run=runs, standardize=standardize, subject="subj1")
        hoc = np.asanyarray(nib.load(masks / "hoc.nii.gz").dataobj)
        ijk = brain.channels[["i", "j", "k"]].to_numpy()
        brain.channels["hoc"] = hoc[ijk[:, 0], ijk[:, 1], ijk[:, 2]].astype(int)
    brain.samples["category"] = pd.Series(brain.samples["trial_type"], dtype=object).fillna("rest").to_numpy()
    return Bunch(
        brain=brain,
        stimuli=stimuli,
        events=table,
        path=str(root),
        citation=_CITATION,
        description=(
            "Haxby et al. (2001), subject 1 (PyMVPA subset): 12 runs x 121 volumes, TR 2.5 s, block design "
            f"with 8 object categories; resolution {resolution!r}."
        ),
    )
