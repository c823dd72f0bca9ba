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
# One row per claim that a chapter checked: the paper's number, ours, and our verdict. The rows come
# from `book/results/*.json`, which every chapter writes at its end (`xai_utils.report.finish`); the
# `preset` column says on which data (`offline`: the generated stand-ins; `real`: real images and
# pretrained networks). Each chapter explains its differences from the paper.
#
# A verdict is one of four kinds: **holds** and **does not hold** (a check that could have gone either
# way), **holds by construction** (the check cannot fail on this setup, so it is no evidence for the
# paper; the chapter says why), and **not testable here** (this run's data or budget cannot decide it;
# the chapter says what would be needed).

# %% tags=["parameters"]
preset = "offline"

# %%
from xai_utils import report

report.start("overview", globals())
table = report.overview()
table

# %% [markdown]
# ## Claims per chapter

# %%
report.overview_summary(table)

# %%
report.finish()
