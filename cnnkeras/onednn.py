"""oneDNN's CPU kernels for every cnnkeras process on x86-64, where TensorFlow leaves them off.

TensorFlow turns its oneDNN kernels on by default only on x86 CPUs with neural-network
features such as AVX512_VNNI, AVX512_BF16 and AMX (Intel Cascade Lake and newer, AMD Zen 4
and newer). On AVX2-only CPUs (AMD EPYC Zen 3, many laptops) it keeps its plain Eigen
kernels unless ``TF_ENABLE_ONEDNN_OPTS=1``. Measured on an AMD EPYC Zen 3 (2 cores,
TensorFlow 2.21, separate processes, oneDNN off then on): a training epoch of lecture_cnn at
batch 128 ran 1.35-1.77x the images/s with oneDNN, lenet5_modern 2.2-3.9x, lenet5
2.2-3.0x, resnet50 1.4x, inception_v3 1.1-1.3x; resnet18, zfnet and alexnet 0.8-2.1x on a
noisy host; only googlenet lost (0.73-0.93x). The README lists every pair.

So ``import cnnkeras`` sets ``TF_ENABLE_ONEDNN_OPTS=1`` unless the user set it, or
TensorFlow is already imported (it reads the variable once, at import; this process then
keeps what TensorFlow chose). ``TF_ENABLE_ONEDNN_OPTS=0`` keeps TensorFlow's plain kernels.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import MutableMapping

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
MACHINES = ("x86_64", "amd64")  # oneDNN's x86 kernels; other CPUs are not measured


def prefer_onednn(environ: MutableMapping[str, str] | None = None, *,
                  machine: str | None = None, tensorflow_imported: bool | None = None) -> bool:
    """Set ``TF_ENABLE_ONEDNN_OPTS=1`` in ``environ`` (``os.environ``) where it takes effect
    and nobody chose otherwise. Returns whether it was set."""
    environ = os.environ if environ is None else environ
    machine = (platform.machine() if machine is None else machine).lower()
    if tensorflow_imported is None:
        tensorflow_imported = "tensorflow" in sys.modules
    if VARIABLE in environ or tensorflow_imported or machine not in MACHINES:
        return False
    environ[VARIABLE] = "1"
    return True
