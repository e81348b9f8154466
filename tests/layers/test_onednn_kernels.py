"""This process runs the CPU kernels its ``TF_ENABLE_ONEDNN_OPTS`` asks for.

Under `make test` the variable is unset until tests/conftest.py imports cnnkeras before
TensorFlow, which sets it to 1: oneDNN's kernels. `make test-no-onednn` sets it to 0:
TensorFlow's plain kernels, as a CPU without oneDNN runs them. The probe tells them apart by
a kernel only oneDNN has (a dilated ``Conv2DBackpropInput``).
"""

import os
import platform

import pytest

from cnnkeras.onednn import MACHINES, VARIABLE
from cnnkeras.training.conv_gradient import onednn_enabled


@pytest.mark.skipif(platform.machine().lower() not in MACHINES,
                    reason="cnnkeras sets the variable on x86-64 only")
def test_this_process_runs_the_kernels_its_environment_asks_for():
    asked = os.environ[VARIABLE]  # the user's, or set by `import cnnkeras` before TensorFlow
    assert onednn_enabled() is (asked.strip().lower() in ("1", "true"))
