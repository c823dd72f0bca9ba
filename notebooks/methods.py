# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Methods reference: every attribution method on the same cells
#
# This chapter is the book's reference for `xai_utils.attribution`: every registered method, run
# through the one entry point `attribute(name, model, x, target=None, **params)` on the same test
# cells, beside the cells' ground-truth heatmaps (0 background, 0.4 cell body, 0.9 the parts that
# define the class: bar, cross, coloured border). Each method runs with its defaults, which are the
# papers' settings (e.g. the salagg paper's 4 x 4 grid of 16 regions for Occlusion, LIME,
# KernelSHAP and Anchor; a zero baseline for Integrated Gradients).
#
# Stand-in data: synthetic cells (classes 0-5) and the small ResNet that the offline OOD benchmark
# trains (shipped in `data/models`; `-p retrain=true` trains it anew). There is no real-data version of this chapter; the paper
# chapters run the same methods on real images with their `real` presets.

# %% tags=["parameters"]
preset = "offline"
seed = 0  # >= 0
device = "auto"
threads = 2  # >= 1
engine = "local"  # names in xai_utils.parallel.ENGINES
ray_address = ""
ray_gpus_per_task = 0.0  # >= 0
size = 32  # >= 16
n_train = 2000  # >= 10
n_val = 80  # >= 2
epochs = 8  # >= 1
width = 16  # >= 1
methods = []  # names in xai_utils.attribution.METHODS
gallery_rows = [0, 1, 2, 3, 4, 5]  # >= 0
retrain = False

# %%
from xai_utils import config, data, models, report
from xai_utils.experiments import methods as ex

params = report.start("methods", globals())
dev = config.setup(seed, device=device, threads=threads, engine=engine, ray_address=ray_address,
                   ray_gpus_per_task=ray_gpus_per_task)

# %% [markdown]
# ## The model
# The offline benchmark's ID cells train the project's default small ResNet (its shipped weights;
# see the reproducibility page); its accuracy on the benchmark's ID test split:

# %%
report.section("model")
bench = data.offline_benchmark(size=size, n_train=n_train, n_val=n_val, seed=seed)
data_key = dict(generator="offline_benchmark", size=size, n_train=n_train, n_val=n_val, seed=seed)
model = models.benchmark_classifier(bench, data_key, width=width, epochs=epochs, seed=seed, device=dev,
                                   progress=False, depth=8, retrain=retrain).model.eval()
cells = ex.gallery_cells(size, seed=seed)
x = cells.x.to(dev)
predicted = model(x).argmax(1).cpu()
print(f"ID test accuracy: {models.accuracy(model, bench.id_test.x, bench.id_test.y):.1%}; "
      f"gallery cells predicted correctly: {int((predicted == cells.y).sum())} of {len(cells)}")

# %% [markdown]
# ## Every method on the same images
# Raw outputs: CAM methods give one map per image at the input size, all others a map per colour
# channel. Below, every map is summed over channels and shown signed (red: evidence for the
# predicted class, blue: against), each scaled by its own largest absolute value. The columns of
# the figure are the rows of the table.

# %%
report.section("gallery")
maps, table = ex.gallery(model, x, methods=methods, seed=seed)
table

# %%
report.figure(ex.plot_gallery(cells, maps, predicted, rows=gallery_rows),
              "One cell of each in-distribution class (rows): the image, its ground truth and every method's "
              "map (signed; red = for the predicted class).", regenerates=None)

# %% [markdown]
# ## Where the attribution mass falls
# Share of each method's absolute attribution on the background, the cell body and the
# discriminative parts, averaged over the six gallery cells (one per ID class), with the share
# of pixels of each region as the chance level. A method that
# explains the class should put more than the chance share on the discriminative parts; the
# [synthetic cells chapter](synthetic_cells.ipynb) scores this properly with the five-band score.

# %%
ex.mass_on_ground_truth(maps, cells.heatmap)

# %% [markdown]
# ## Properties that hold by construction
# The unit tests check these on tiny models; here they are checked on the trained model and the
# gallery images: completeness of Integrated Gradients (a Riemann sum, so the error shrinks with the
# number of steps), DeepLift's summation to delta (exact up to float32 rounding), and the salagg
# paper's theorem that the mean of the raw Grad-CAM map is the target logit minus the head's bias,
# divided by the number of positions of the feature map.

# %%
ex.property_checks(model, x)

# %%
report.finish()
