"""load_rdms / save_rdms: every format, round trips, and each validation error."""

from __future__ import annotations

import numpy as np
import pytest
import rsatoolbox
import scipy.io
from scipy.spatial.distance import pdist, squareform

from brainalign.datasets import dataset_path, load_rdms, save_rdms


def _rdm(n=6, random_state=0):
    return squareform(pdist(np.random.default_rng(random_state).standard_normal((n, 4))))


def test_bundled_struct_files():
    folder = dataset_path("kriegeskorte92")
    brain = load_rdms(folder / "92_brainRDMs.mat", dissimilarity_measure="correlation")
    raw = scipy.io.loadmat(folder / "92_brainRDMs.mat")["RDMs"]
    assert brain.n_rdm == 8 and brain.n_cond == 92
    assert brain.dissimilarity_measure == "correlation"
    np.testing.assert_allclose(brain.get_matrices()[1], raw[0, 1, 0]["RDM"], rtol=1e-6)
    assert brain.rdm_descriptors["name"][1] == "hIT | KO | Session: 1"
    # struct with condensed 1 x 4186 vectors, skipping the non-RDM variables of the file
    with pytest.warns(UserWarning, match="skipped 3 variable.*categoryLabels.*stimuli_92objs"):
        sup = load_rdms(folder / "Kriegeskorte_Neuron2008_supplementalData.mat", descriptor="label")
    assert list(sup.rdm_descriptors["label"]) == ["mIT_674neurons", "hITvisStim_316vx"]
    ref = scipy.io.loadmat(folder / "Kriegeskorte_Neuron2008_supplementalData.mat")["RDMs_mIT_hIT_fig1"]
    np.testing.assert_allclose(sup.get_matrices()[0], squareform(ref[0, 0]["RDM"].ravel()))


def test_mat_plain_arrays(tmp_path):
    a, b = _rdm(random_state=0), _rdm(random_state=1)
    scipy.io.savemat(tmp_path / "one.mat", {"rdm": a, "labels": np.array(["x"])})
    scipy.io.savemat(tmp_path / "stack.mat", {"rdms": np.stack([a, b], axis=2)})  # MATLAB (n, n, k)
    scipy.io.savemat(tmp_path / "vec.mat", {"v": squareform(a)[None, :], "w": squareform(b)})
    with pytest.warns(UserWarning, match=r"skipped 1 variable\(s\).*labels \(shape \(1,\)\)"):
        one = load_rdms(tmp_path / "one.mat")
    np.testing.assert_allclose(one.get_matrices()[0], a)
    stack = load_rdms(tmp_path / "stack.mat")
    np.testing.assert_allclose(stack.get_matrices(), np.stack([a, b]))
    assert list(stack.rdm_descriptors["name"]) == ["rdms[0]", "rdms[1]"]
    vec = load_rdms(tmp_path / "vec.mat")
    np.testing.assert_allclose(vec.get_matrices(), np.stack([a, b]))
    only_w = load_rdms(tmp_path / "vec.mat", variable="w")
    assert only_w.n_rdm == 1
    with pytest.raises(KeyError, match="no variable 'z'.*\\['v', 'w'\\]"):
        load_rdms(tmp_path / "vec.mat", variable="z")
    with pytest.raises(ValueError, match="holds no RDM"):
        load_rdms(tmp_path / "one.mat", variable="labels")


def test_npz_arrays_and_round_trip(tmp_path):
    a, b = _rdm(random_state=0), _rdm(random_state=1)
    np.savez(tmp_path / "plain.npz", first=a, more=np.stack([a, b]))  # numpy (k, n, n)
    plain = load_rdms(tmp_path / "plain.npz")
    assert list(plain.rdm_descriptors["name"]) == ["first", "more[0]", "more[1]"]
    np.testing.assert_allclose(plain.get_matrices()[2], b)

    rdms = rsatoolbox.rdm.RDMs(np.stack([a, b]), dissimilarity_measure="euclidean",
                               rdm_descriptors={"subject": ["s1", "s2"], "session": [1, 2]},
                               pattern_descriptors={"stimulus": [f"im{i}" for i in range(6)]})
    for ext in (".npz", ".h5", ".hdf5"):
        path = save_rdms(rdms, tmp_path / f"out{ext}")
        back = load_rdms(path)
        np.testing.assert_allclose(back.get_matrices(), rdms.get_matrices())
        assert back.dissimilarity_measure == "euclidean"
        assert list(back.rdm_descriptors["subject"]) == ["s1", "s2"]
        assert list(back.pattern_descriptors["stimulus"]) == [f"im{i}" for i in range(6)]
        with pytest.raises(FileExistsError, match="overwrite=True"):
            save_rdms(rdms, path)
        save_rdms(rdms, path, overwrite=True)
    with pytest.raises(ValueError, match="'file extension'.*'.npz'"):
        save_rdms(rdms, tmp_path / "out.pkl")
    with pytest.raises(TypeError, match="rsatoolbox.rdm.RDMs"):
        save_rdms(a, tmp_path / "x.npz")


def test_npz_never_unpickles(tmp_path):
    np.savez(tmp_path / "obj.npz", names=np.array([{"a": 1}], dtype=object), rdm=_rdm())
    with pytest.raises(ValueError, match="'names' of obj.npz is an object array.*never loads pickles"):
        load_rdms(tmp_path / "obj.npz")


def test_csv_variants(tmp_path):
    a = _rdm(n=4)
    names = ["cat", "dog", "car", "cup"]
    np.savetxt(tmp_path / "bare.csv", a, delimiter=",")
    bare = load_rdms(tmp_path / "bare.csv")
    np.testing.assert_allclose(bare.get_matrices()[0], a)
    with open(tmp_path / "header.csv", "w") as fh:
        fh.write(",".join(names) + "\n")
        np.savetxt(fh, a, delimiter=",")
    header = load_rdms(tmp_path / "header.csv")
    assert list(header.pattern_descriptors["stimulus"]) == names
    np.testing.assert_allclose(header.get_matrices()[0], a)
    with open(tmp_path / "both.csv", "w") as fh:  # pandas DataFrame.to_csv layout
        fh.write("," + ",".join(names) + "\n")
        for name, row in zip(names, a):
            fh.write(name + "," + ",".join(str(float(v)) for v in row) + "\n")
    both = load_rdms(tmp_path / "both.csv")
    assert list(both.pattern_descriptors["stimulus"]) == names
    np.testing.assert_allclose(both.get_matrices()[0], a)


def test_validation_errors(tmp_path):
    a = _rdm(n=5)
    np.savetxt(tmp_path / "rect.csv", a[:, :4], delimiter=",")
    with pytest.raises(ValueError, match="5 x 4 table, not a square matrix"):
        load_rdms(tmp_path / "rect.csv")
    asym = a.copy()
    asym[1, 3] += 0.5
    np.savez(tmp_path / "asym.npz", r=asym)
    with pytest.raises(ValueError, match=r"not symmetric: max \|d\[i, j\] - d\[j, i\]\| = 0.5 at \(1, 3\)"):
        load_rdms(tmp_path / "asym.npz")
    diag = a + np.eye(5) * 0.25
    np.savez(tmp_path / "diag.npz", r=diag)
    with pytest.raises(ValueError, match=r"non-zero diagonal: max \|d\[i, i\]\| = 0.25"):
        load_rdms(tmp_path / "diag.npz")
    nan = a.copy()
    nan[0, 2] = nan[2, 0] = np.nan
    scipy.io.savemat(tmp_path / "nan.mat", {"r": nan})
    with pytest.raises(ValueError, match="2 NaN/inf values \\(first at \\(0, 2\\)\\)"):
        load_rdms(tmp_path / "nan.mat")
    np.savez(tmp_path / "sizes.npz", r5=a, r4=_rdm(n=4))
    with pytest.raises(ValueError, match="RDMs of different sizes"):
        load_rdms(tmp_path / "sizes.npz")
    np.savez(tmp_path / "none.npz", x=np.zeros((3, 5, 7)))
    with pytest.raises(ValueError, match="No RDM found in none.npz"):
        load_rdms(tmp_path / "none.npz")


def test_file_type_errors(tmp_path):
    (tmp_path / "r.pkl").write_bytes(b"not read")
    with pytest.raises(ValueError, match="pickle file; brainalign never loads pickles"):
        load_rdms(tmp_path / "r.pkl")
    with pytest.raises(ValueError, match="'file extension'.*'.txt'"):
        load_rdms(tmp_path / "r.txt")
    with pytest.raises(FileNotFoundError, match="RDM file not found"):
        load_rdms(tmp_path / "missing.npz")


def test_vector_beside_a_matrix_is_not_an_rdm(tmp_path):
    """A 3x3 RDM and an unrelated length-3 vector (3 = 3*2/2): the vector was read as a second RDM."""
    a = _rdm(n=3)
    for name, save in (("m.mat", lambda p, **kw: scipy.io.savemat(p, kw)), ("m.npz", lambda p, **kw: np.savez(p, **kw))):
        save(tmp_path / name, rdm=a, onsets=np.array([0.5, 1.5, 2.5]))
        with pytest.warns(UserWarning, match=r"read the RDMs in \['rdm'\]; skipped 1 .*onsets"):
            rdms = load_rdms(tmp_path / name)
        assert rdms.n_rdm == 1
        np.testing.assert_allclose(rdms.get_matrices()[0], a)
        assert load_rdms(tmp_path / name, variable="onsets").n_rdm == 1  # asked for by name: read
    scipy.io.savemat(tmp_path / "named.mat", {"rdm_full": a, "rdm_vec": squareform(a)})
    assert load_rdms(tmp_path / "named.mat").n_rdm == 2  # named like an RDM: kept


def test_corrupt_files_name_the_file(tmp_path):
    import pickle

    (tmp_path / "text.mat").write_text("not a mat file")
    with pytest.raises(ValueError, match="Could not read .*text.mat as a MATLAB .mat file"):
        load_rdms(tmp_path / "text.mat")
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="Could not read .*trunc.npz as an .npz archive"):
        load_rdms(tmp_path / "trunc.npz")
    (tmp_path / "pick.npz").write_bytes(pickle.dumps({"rdm": _rdm()}))
    with pytest.raises(ValueError, match="pick.npz is not an .npz archive but a pickle") as info:
        load_rdms(tmp_path / "pick.npz")
    assert "allow_pickle" not in str(info.value)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="Could not read .*text.h5 as rsatoolbox RDMs in HDF5"):
        load_rdms(tmp_path / "text.h5")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv is empty"):
        load_rdms(tmp_path / "empty.csv")


def test_failed_overwrite_keeps_the_old_file(tmp_path):
    a = _rdm(n=3)
    target = save_rdms(rsatoolbox.rdm.RDMs(a[None]), tmp_path / "r.h5")
    before = target.read_bytes()
    bad = rsatoolbox.rdm.RDMs(a[None], rdm_descriptors={"name": ["café"]})
    with pytest.raises(OSError, match="the existing file is unchanged.*save to a .npz path"):
        save_rdms(bad, target, overwrite=True)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]
    out = save_rdms(bad, tmp_path / "r.npz")  # npz keeps non-ASCII descriptors
    assert list(load_rdms(out).rdm_descriptors["name"]) == ["café"]
