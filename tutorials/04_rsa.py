# %% [markdown]
# # RSA on the 92 images: models, AlexNet layers, human and monkey IT
#
# Kriegeskorte et al. (2008) measured human inferior temporal cortex (hIT, fMRI, 4 subjects x
# 2 sessions) and monkey IT (674 neurons) while showing 92 object photographs. Here we ask
# which model RDM (category models, early-vision models, AlexNet layers) best explains hIT,
# how close it gets to the noise ceiling, and how sure we are (bootstrap over stimuli).

# %%
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from rsatoolbox.rdm import RDMs

from brainalign.datasets import load_kriegeskorte92
from brainalign.rsa import bootstrap, compare, rdm_ceiling

out = Path("results/tutorials")
out.mkdir(parents=True, exist_ok=True)
data = load_kriegeskorte92()
hit, mit = data.hit_rdms, data.mit_rdm
print(hit.n_rdm, "hIT RDMs over", hit.n_cond, "images")

# %% [markdown]
# Candidate models: the 8 model RDMs of the original paper and the 9 AlexNet layers. We give
# every model a name in the `layer` descriptor so the results tables can name them.

# %%
names = list(data.model_rdms.rdm_descriptors["name"]) + [f"alexnet {x}" for x in data.alexnet_rdms.rdm_descriptors["layer"]]
models = RDMs(np.concatenate([data.model_rdms.get_vectors(), data.alexnet_rdms.get_vectors()]),
              rdm_descriptors={"layer": names}, pattern_descriptors=dict(hit.pattern_descriptors))

# %% [markdown]
# Spearman correlation of each model with each hIT RDM (one batched call), the leave-one-
# subject-out noise ceiling (`rdm_ceiling`: each of the 8 session RDMs is scored against the
# pooled RDM of the *other* subjects for the lower bound, of all subjects for the upper
# bound), and bootstrap CIs over stimuli (pairs of an image with its own copy in a bootstrap
# sample are dropped, as rsatoolbox does). The models and the data carry their image ids
# (`stimulus_id`), so `compare` and `bootstrap` match conditions by id, not by position.

# %%
scores_hit = compare(models, hit, method="spearman").mean(1)
scores_mit = compare(models, mit, method="spearman")[:, 0]
lower, upper = rdm_ceiling(hit, method="spearman", rdm_descriptor="subject")
boot = bootstrap(models, hit, method="spearman", n_resamples=200, resample="stimuli", random_state=0)
table = boot.scores.assign(monkey_IT=scores_mit).sort_values("score", ascending=False)
print(table.round(3).to_string(index=False))
print(f"noise ceiling: lower {lower:.3f}, upper {upper:.3f}")
print(boot.paired.sort_values("p").head(5).round(3).to_string(index=False))

# %%
fig, ax = plt.subplots(figsize=(9, 4))
order = table.index.to_numpy()
pos = np.arange(len(order))
ax.bar(pos, table["score"], color="0.6")
ax.errorbar(pos, table["score"], yerr=[table["score"] - table["ci_low"], table["ci_high"] - table["score"]],
            fmt="none", ecolor="k")
ax.axhspan(lower, upper, color="tab:blue", alpha=0.2, label="noise ceiling")
ax.set_xticks(pos, table["model"], rotation=70, ha="right", fontsize=7)
ax.set_ylabel("Spearman rho with hIT")
ax.legend()
fig.tight_layout()
fig.savefig(out / "04_rsa_hit.png", dpi=120)

# %% [markdown]
# Sanity checks a reviewer would ask for: no model exceeds the upper bound of the noise
# ceiling, and the monkey-IT RDM (a different species!) is among the best models of human IT.

# %%
assert (scores_hit < upper).all(), "a model beats the upper noise-ceiling bound"
assert "monkeyIT" in list(table["model"][:3]), table["model"][:3]
