"""Side-by-side measurements: ``python -m benchmarks`` (``make bench``) runs them all.

Each benchmark times two or more variants of the same work in one process, takes
the median of several repetitions after a warm-up, reports ratios, and writes a
Markdown table and a JSON file to ``benchmarks/results/`` (git-ignored). Each is
also runnable alone, e.g. ``python -m benchmarks.precision --help``. Never part
of ``make test``: timings belong here, not in tests.

The package imports ``cnnkeras`` before anything imports TensorFlow, so both sides of
every comparison run the kernels a cnnkeras process runs (``cnnkeras/onednn.py``: oneDNN
on x86-64 unless ``TF_ENABLE_ONEDNN_OPTS`` says otherwise), and the machine facts each
result records say whether oneDNN was on.
"""

import cnnkeras  # noqa: F401  first, so every benchmark runs TensorFlow as cnnkeras does (oneDNN)
