"""``import cnnkeras`` turns oneDNN on where TensorFlow would leave it off, and only there."""

import os
import platform
import subprocess
import sys

import pytest

from cnnkeras.onednn import MACHINES, VARIABLE, prefer_onednn

PROBE = ("import os, cnnkeras\n"
         "from cnnkeras.training.conv_gradient import onednn_enabled\n"
         f"print(os.environ.get({VARIABLE!r}), onednn_enabled())")


def fresh_process(code: str, **environ) -> str:
    env = {key: value for key, value in os.environ.items() if key != VARIABLE}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**env, **environ}, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_sets_the_variable_on_x86_64_before_tensorflow():
    environ = {}
    assert prefer_onednn(environ, machine="x86_64", tensorflow_imported=False)
    assert environ == {VARIABLE: "1"}


@pytest.mark.parametrize("environ, machine, imported", [
    ({VARIABLE: "0"}, "x86_64", False),  # the user's choice
    ({}, "aarch64", False),               # not measured there
    ({}, "AMD64", True),                  # too late: TensorFlow read it at import
])
def test_leaves_the_variable_alone(environ, machine, imported):
    before = dict(environ)
    assert not prefer_onednn(environ, machine=machine, tensorflow_imported=imported)
    assert environ == before


X86_64 = pytest.mark.skipif(platform.machine().lower() not in MACHINES,
                            reason="oneDNN is preferred on x86-64 only")


@X86_64
def test_a_cnnkeras_process_runs_onednn_kernels():
    # with TF_ENABLE_ONEDNN_OPTS=0 the probe says False: tests/layers/test_onednn_kernels.py,
    # which `make test-no-onednn` runs
    assert fresh_process(PROBE) == "1 True"


@X86_64
def test_after_tensorflow_this_process_leaves_the_variable_alone():
    # pytest's process has imported TensorFlow by now (after cnnkeras, see conftest.py); what
    # prefer_onednn reads of it, unlike the cases above, is this process's own sys.modules
    import tensorflow  # noqa: F401

    environ = {}
    assert not prefer_onednn(environ)
    assert environ == {}
