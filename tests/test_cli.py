"""The command line answers at once where it can, and says nothing TensorFlow did not mean."""

from __future__ import annotations

import json
import subprocess
import sys

from cnnkeras import cli


def modules_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; which heavy modules did it import?"""
    probe = (f"import sys, json\n{code}\n"
             "print(json.dumps({m: m in sys.modules for m in ('tensorflow', 'keras', 'mlflow')}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_of_every_subcommand_and_list_import_no_tensorflow():
    calls = [[], ["list"], *[[name, "--help"] for name in cli.COMMANDS]]
    code = "\n".join(
        ["from cnnkeras.cli import main", "import contextlib, io"]
        + [f"with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
           f"    main({call!r} if {call!r} else ['--help'])" for call in calls])
    loaded = modules_after(code)
    assert loaded == {"tensorflow": False, "keras": False, "mlflow": False}


def test_compare_and_the_dashboard_need_no_tensorflow():
    loaded = modules_after("from cnnkeras.tracking import compare, dashboard")
    assert loaded["tensorflow"] is False and loaded["keras"] is False
    assert loaded["mlflow"] is True  # they do read the store


def test_list_names_every_registered_architecture_and_experiment(tmp_path, run_cli):
    done = run_cli("list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    import cnnkeras
    import experiments

    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    assert lines["architectures"].strip().split(", ") == cnnkeras.list_architectures()
    assert lines["experiments"].strip().split(", ") == experiments.names()
    assert "idx:DIR" in lines["datasets"]


def test_a_tensorflow_command_prints_no_tensorflow_or_cuda_log_lines(tmp_path, run_cli):
    done = run_cli("inspect", "lecture_cnn", "--input-shape", "28,28,1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "137,660" in done.stdout or "137660" in done.stdout  # the real table was printed
    assert done.stderr == ""


def test_log_level_debug_lets_tensorflow_speak(tmp_path, run_cli):
    done = run_cli("--log-level", "debug", "inspect", "lecture_cnn", "--input-shape", "28,28,1",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() != ""  # TensorFlow's own start-up lines, unfiltered
