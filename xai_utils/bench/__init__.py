"""Performance bench: ``python -m xai_utils.bench [--quick] [--runs N] [--device auto] [--out CSV] [--write-page]``.

Measures, side by side in one run and on one device:

* every registered attribution method (``attribution.METHODS``) on a batch of images: time per image
  and its ratio to a floor (:class:`~xai_utils.bench.timing.Floors`): its forward+backward image
  passes at the best per-image forward+backward time, plus its forward-only images (model
  evaluations) at the best per-image forward time, over the batch sizes it could use; the reference
  passes are timed beside each method.  Passes and evaluations are counted by a hook on the model,
  not assumed;
* Occlusion, LIME and KernelSHAP against captum's default per-image call with the same parameters
  (speed-up), and against captum on the same perturbations (maximum difference of the maps);
  Integrated Gradients against captum's default single batch, LRP against zennit with the
  composite registered once;
* every OOD score (``ood.SCORES``) against its forward / backward floor; cell generation (images/s);
  offline training time and test accuracy; peak memory (RSS; CUDA max allocated on a GPU).

Results go to ``book/results/bench_<device>.csv`` (tidy rows, machine description included);
``--write-page`` renders every ``bench_*.csv`` into ``book/performance.md``.  Timings are best-of-r
wall times after a warm-up; nothing here is asserted in tests except that the numbers exist.

Modules: :mod:`.settings` (what a run measures, the rows' columns), :mod:`.timing` (best-of-r
times, peak memory, pass counting, floors), :mod:`.machine`, :mod:`.reference` (captum and zennit
calls, exact fits, anchor-exp's own work), :mod:`.sections` (the sections and :func:`run`), :mod:`.runs`
(several runs, their medians and ranges), :mod:`.page` (the Markdown page, its prose in ``page_*.md``) and
:mod:`.cli`.
"""

from .cli import main
from .page import markdown_table, write_page
from .sections import run
from .settings import CAPTUM_EQUIVALENT, COLUMNS, BenchSettings, ImageSetting
from .timing import PassCounter

__all__ = [
    "CAPTUM_EQUIVALENT",
    "COLUMNS",
    "BenchSettings",
    "ImageSetting",
    "PassCounter",
    "main",
    "markdown_table",
    "run",
    "write_page",
]
