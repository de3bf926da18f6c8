"""tRSA: comparisons, nested threshold selection, identification, simulated ground truth."""

import numpy as np
import pytest
from rsatoolbox.rdm import RDMs

from brainalign.rsa import calc_rdm, compare
from brainalign.topology import geotopological, identify, trsa, trsa_grid


def _layers(rng, n=40):
    layers = [rng.standard_normal((n, 30))]
    for _ in range(3):
        layers.append(np.tanh(layers[-1] @ rng.standard_normal((30, 30)) / np.sqrt(30) * 2))
    return layers, np.stack([calc_rdm(x).get_vectors()[0] for x in layers])


def _subject_rdm(rng, layer, noise, distort):
    x = layer @ rng.standard_normal((layer.shape[1], 100))
    x = x + noise * x.std() * rng.standard_normal(x.shape)
    d = calc_rdm(x).get_vectors()[0]
    if distort:  # a steep per-subject sigmoid: monotone, but far from linear
        c = np.quantile(d, rng.uniform(0.05, 0.3))
        d = 1 / (1 + np.exp(-(d - c) / (0.02 * d.std()))) + 1e-9 * d
    return d


def test_trsa_is_compare_of_rgtms(rng):
    a, b = rng.random((3, 45)), rng.random((2, 45))
    ref = compare(geotopological(a, low=0.1, up=0.6), geotopological(b, low=0.1, up=0.6), method="corr")
    np.testing.assert_allclose(trsa(a, b, low=0.1, up=0.6, method="corr"), ref)
    assert trsa(a, b, low=0.1, up=0.6, geodesic=True).shape == (3, 2)


def test_trsa_invariant_to_monotone_distortions(rng):
    a, b = rng.random((2, 45)), rng.random((3, 45))
    distorted = np.stack([b[0] ** 3, np.exp(5 * b[1]), np.log1p(b[2])])
    np.testing.assert_allclose(trsa(a, distorted, low=0.1, up=0.6), trsa(a, b, low=0.1, up=0.6))
    assert not np.allclose(compare(a, distorted, method="corr"), compare(a, b, method="corr"))


def _trained_layer_rdms(n_instances=6, n_hidden=3, width=32, steps=200, seed=0):
    """RDMs of every layer of several independently trained MLPs (different initialisations
    and batch orders) on the same 48 test stimuli: 8 Gaussian classes in 20 dimensions."""
    torch = pytest.importorskip("torch")

    gen = np.random.default_rng(seed)
    n_cls, dim = 8, 20
    means = gen.standard_normal((n_cls, dim))
    y_test = np.repeat(np.arange(n_cls), 6)
    x_test = torch.tensor(means[y_test] + gen.standard_normal((y_test.size, dim)), dtype=torch.float32)
    y_train = np.repeat(np.arange(n_cls), 100)
    x_train = torch.tensor(means[y_train] + gen.standard_normal((y_train.size, dim)), dtype=torch.float32)
    y_train = torch.tensor(y_train)
    vecs, layer, instance = [], [], []
    for inst in range(n_instances):
        torch.manual_seed(1000 * seed + inst)
        sizes = [dim] + [width] * n_hidden + [n_cls]
        net = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        opt = torch.optim.Adam([p for lin in net for p in lin.parameters()], lr=5e-3)

        def forward(x):
            out = []
            for i, lin in enumerate(net):
                x = lin(x)
                x = torch.relu(x) if i < len(net) - 1 else x
                out.append(x)
            return out

        batches = torch.Generator().manual_seed(inst)
        for _ in range(steps):
            idx = torch.randint(0, len(x_train), (64,), generator=batches)
            loss = torch.nn.functional.cross_entropy(forward(x_train[idx])[-1], y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            for k, act in enumerate(forward(x_test)):
                vecs.append(calc_rdm(act.numpy().astype(np.float64)).get_vectors()[0])
                layer.append(f"layer{k + 1}")
                instance.append(inst)
    return np.array(vecs), np.array(layer), np.array(instance)


@pytest.mark.slow
def test_layer_identification_across_trained_instances():
    """11.6, in the spirit of the paper's network experiment: which layer does an RDM come
    from? Leave-one-instance-out nearest-centroid identification over 6 independently
    trained networks, noise added to the RDM entries, the raw RDM, the rank RDM and RGTM /
    RGDM summaries, thresholds chosen by nested cross-validation. Tutorial 05 reports the
    numbers; here the simulation's validity and the selection bias are checked."""
    from brainalign.topology import default_grid

    vecs, layer, instance = _trained_layer_rdms()
    chance = 1 / 4
    clean = RDMs(vecs, rdm_descriptors={"instance": instance})
    assert identify(clean, labels=layer, rdm_descriptor="instance", method="euclidean").accuracy >= 0.75
    noisy = np.clip(vecs + 0.5 * vecs.std() * np.random.default_rng(0).standard_normal(vecs.shape), 0, None)
    r = RDMs(noisy, rdm_descriptors={"instance": instance})
    acc = {"RDM": identify(r, labels=layer, rdm_descriptor="instance", method="euclidean").accuracy,
           "rank RDM": identify(r, labels=layer, rdm_descriptor="instance", method="euclidean", low=0.0, up=1.0).accuracy}
    for name, geo in [("RGTM", False), ("RGDM", True)]:
        res = identify(r, labels=layer, rdm_descriptor="instance", method="euclidean",
                       grid=default_grid(geodesic=geo, step=0.2), geodesic=geo)
        acc[f"{name} nested"] = res.accuracy
        acc[f"{name} in-sample best"] = float(res.grid["accuracy"].max())
        assert set(res.folds["subject"]) == set(range(6)) and len(res.grid) == len(default_grid(geodesic=geo, step=0.2))
        # choosing the thresholds on the test instances flatters them
        assert acc[f"{name} in-sample best"] >= acc[f"{name} nested"]
    assert acc["RDM"] > chance + 0.25
    assert all(0.0 <= a <= 1.0 for a in acc.values())


def test_identify_euclidean_equals_sklearn_nearest_centroid(rng):
    from sklearn.neighbors import NearestCentroid

    v = rng.random((12, 45)) + np.repeat(rng.random((3, 45)), 4, axis=0) * 0.5
    labels = np.repeat(["a", "b", "c"], 4)
    subj = np.tile(np.arange(4), 3)
    res = identify(RDMs(v, rdm_descriptors={"subject": subj}), labels=labels, method="euclidean")
    for s in range(4):
        clf = NearestCentroid().fit(v[subj != s], labels[subj != s])
        got = res.predictions.query("subject == @s")["predicted"].to_numpy()
        np.testing.assert_array_equal(got, clf.predict(v[subj == s]))


def test_identify_nested_selection_ignores_the_test_subject(rng):
    """The thresholds of a fold are chosen on the other subjects: changing the held-out
    subject's RDMs cannot change them."""
    layers, _ = _layers(rng, n=20)
    rdms, labels, subj = [], [], []
    for s in range(4):
        for k in range(4):
            rdms.append(_subject_rdm(rng, layers[k], noise=2.0, distort=False))
            labels.append(k)
            subj.append(s)
    v = np.stack(rdms)
    grid = [(0.0, 1.0), (0.1, 0.5), (0.4, 0.6), (0.0, 0.3)]
    res = identify(RDMs(v, rdm_descriptors={"subject": subj}), labels=labels, grid=grid, method="corr")
    v2 = v.copy()
    v2[np.array(subj) == 2] = rng.random((4, v.shape[1]))  # subject 2 replaced by noise
    res2 = identify(RDMs(v2, rdm_descriptors={"subject": subj}), labels=labels, grid=grid, method="corr")
    f1, f2 = res.folds.set_index("subject"), res2.folds.set_index("subject")
    assert (f1.loc[2, "low"], f1.loc[2, "up"]) == (f2.loc[2, "low"], f2.loc[2, "up"])
    assert list(res.grid.columns) == ["low", "up", "accuracy"] and len(res.grid) == 4
    with pytest.raises(ValueError, match="either low and up .* or grid="):
        identify(RDMs(v, rdm_descriptors={"subject": subj}), labels=labels, grid=grid, low=0.1, up=0.5)
    with pytest.raises(ValueError, match="Allowed values are 'default'"):
        identify(RDMs(v, rdm_descriptors={"subject": subj}), labels=labels, grid="all")
    with pytest.raises(ValueError, match="Allowed values"):
        identify(RDMs(v, rdm_descriptors={"subject": subj}), labels=labels, method="manhattan")


def test_trsa_grid_nested_selection(rng):
    layers, models = _layers(rng, n=30)
    truth = np.repeat(np.arange(4), 3)
    data = RDMs(np.stack([_subject_rdm(rng, layers[t], noise=1.0, distort=True) for t in truth]),
                rdm_descriptors={"subject": np.tile(np.arange(3), 4)})
    grid = [(0.0, 1.0), (0.1, 0.5), (0.2, 0.2)]
    res = trsa_grid(models, data, truth=truth, grid=grid)
    assert res.similarities.shape == (3, 4, 12)
    assert len(res.folds) == 3 and set(res.folds["subject"]) == {0, 1, 2}
    assert 0.0 <= res.accuracy <= 1.0 and res.accuracy >= 0.5
    assert list(res.grid.columns) == ["low", "up", "accuracy", "margin"]
    with pytest.raises(ValueError, match="truth needs one model index"):
        trsa_grid(models, data, truth=[0, 1], grid=grid)
    with pytest.raises(KeyError, match="no rdm descriptor"):
        trsa_grid(models, data.get_vectors(), truth=truth, grid=grid)


def test_identify_regions_across_subjects(rng):
    layers, _ = _layers(rng, n=30)
    rdms, labels, subj = [], [], []
    for s in range(4):
        for k in range(4):
            rdms.append(_subject_rdm(rng, layers[k], noise=1.0, distort=False))
            labels.append(f"region{k}")
            subj.append(s)
    r = RDMs(np.stack(rdms), rdm_descriptors={"subject": subj})
    res = identify(r, labels=labels, method="corr")
    assert res.accuracy >= 0.9
    res_t = identify(r, labels=labels, method="corr", low=0.1, up=0.5)
    assert res_t.accuracy >= 0.75
    assert set(res.predictions.columns) == {"subject", "label", "predicted", "correct"}
    with pytest.raises(ValueError, match="both low and up"):
        identify(r, labels=labels, low=0.1)
    with pytest.raises(ValueError, match="one entry per RDM"):
        identify(r, labels=labels[:3])
