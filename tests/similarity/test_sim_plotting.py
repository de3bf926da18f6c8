"""plotting.plot_similarity_matrix draws labelled layer x layer / layer x ROI matrices."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from brainalign.plotting import plot_similarity_matrix


def test_single_and_several_matrices():
    m = np.random.default_rng(0).random((4, 3))
    fig = plot_similarity_matrix(m, method="procrustes-angular", row_labels=list("abcd"), col_labels=["V1", "V4", "IT"],
                                 col_title="ROI")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "ROI" and [t.get_text() for t in ax.get_yticklabels()] == list("abcd")
    cbars = [a.get_ylabel() for a in fig.axes if a.get_label() == "<colorbar>"]
    assert cbars == ["procrustes-angular (distance: lower = more similar)"]
    # best cell of each row outlined: the lowest distance
    rects = [p for p in ax.patches]
    assert len(rects) == 4
    assert [int(r.get_x() + 0.5) for r in rects] == list(np.argmin(m, axis=1))
    fig = plot_similarity_matrix({"cka": m, "mutual_knn": m}, mark_best="col")
    assert len([a for a in fig.axes if a.get_label() == "<colorbar>"]) == 2


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        plot_similarity_matrix({"cka": np.eye(3), "rsa": np.eye(2)})
    with pytest.raises(ValueError, match="row_labels / col_labels have 2 / 3 names for a 3 x 3"):
        plot_similarity_matrix(np.eye(3), row_labels=["a", "b"])
    with pytest.raises(ValueError, match="mark_best"):
        plot_similarity_matrix(np.eye(3), mark_best="diag")
