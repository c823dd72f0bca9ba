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
# # Reproduction overview
#
# What every chapter found, read from `book/results/*.json`, which each chapter writes at its end
# (`xai_utils.report.finish`): first the claims per chapter counted by verdict, then every number computed
# beside one the paper printed, then every claim with the paper's side, ours and the verdict. The `preset`
# says on which data (`offline`: the generated stand-ins; `real`: real images and pretrained networks).
# Each chapter explains its differences from the paper.
#
# A verdict is one of four kinds: **holds** and **does not hold** (a check that could have gone either
# way), **holds by construction** (the check cannot fail on this setup, so it is no evidence for the
# paper; the chapter says why), and **not testable here** (this run's data or budget cannot decide it;
# the chapter says what would be needed).

# %% tags=["parameters"]
preset = "offline"

# %%
from IPython.display import HTML, display

from xai_utils import report
from xai_utils.experiments import overview

report.start("overview", globals())
table = overview.claims()
display(HTML(overview.summary_html(table)))

# %% [markdown]
# ## The paper's numbers beside ours
#
# Every number a chapter computed beside one the paper printed: the paper's on the x axis, ours on the y
# axis, one panel per kind of number (AUROC and other rates in percent, fractions, correlations, counts,
# protocol settings). On the dashed diagonal ours equals the paper's. Most `offline` points are *not*
# expected on it: those runs use small stand-in data and networks, and each chapter says what that changes.

# %%
numbers = overview.numbers()
if numbers.empty:
    print(overview.NO_RESULTS)
else:
    report.figure(overview.plot_numbers(numbers),
                  f"The paper's numbers (x) against ours (y) for {len(numbers)} numbers of "
                  f"{numbers['paper'].nunique()} chapters; colour: chapter, marker: preset; dashed: ours = paper.",
                  regenerates=None)

# %% [markdown]
# ## Every claim
#
# Each claim links to the place in its chapter where it is decided.

# %%
display(HTML(overview.claims_html(table)))

# %%
report.finish()
