"""`cnnkeras ui` in a real headless Chromium: what a person sees in the MLflow dashboard.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it); screenshots are
written to test-artifacts/dashboard/ for a look afterwards.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cnnkeras.tracking import dashboard

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is absent (apt-get install chromium)")


@pytest.fixture(scope="module")
def ui(searched_store, loopback):
    """`cnnkeras ui` on a free port; yields the URLs it printed, by what they open."""
    uri, folder = searched_store
    port = loopback.free_port()
    log = open(folder / f"ui-{port}.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnkeras", "ui", "--port", str(port)], cwd=folder,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        loopback.wait_for_http(f"http://127.0.0.1:{port}/health", process)
        log.seek(0)
        printed = log.read()
        urls = {line.split(": ", 1)[0].strip(): line.split(": ", 1)[1].strip()
                for line in printed.splitlines() if ": http://127.0.0.1" in line}
        yield {"uri": uri, "base": f"http://127.0.0.1:{port}", "printed": printed, **urls}
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # as a supervisor would stop `cnnkeras ui`
        process.wait(timeout=30)
        log.close()
    # serve() runs mlflow in its own process group and must end it on the way out.
    assert not loopback.answers(f"http://127.0.0.1:{port}/health"), "the server outlived it"


def sidebar(page) -> str:
    return page.locator("aside").first.inner_text()


def assert_model_training_view(page) -> None:
    """MLflow's model-training navigation, not the GenAI one (judges, evaluation runs)."""
    text = sidebar(page)
    assert "Model registry" in text and "Judges" not in text, text


@pytest.fixture(scope="module")
def page(request):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=FLAGS, headless=True,
            viewport={"width": 1400, "height": 900})
        yield context.new_page()
        context.close()
    shutil.rmtree(profile, ignore_errors=True)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\ndashboard screenshots: {SHOTS}")


def printed_url(ui, start: str) -> str:
    return next(value for key, value in ui.items() if key.startswith(start))


@pytest.fixture(scope="module")
def search(ui):
    """The search `cnnkeras ui` points at: its trials best first, and its space in order."""
    client = MlflowClient(ui["uri"])
    experiment = client.get_experiment_by_name("lecture_digits").experiment_id
    (found,) = client.search_runs([experiment], "tags.`cnnkeras.kind` = 'search'")
    trials = client.search_runs([experiment],
                                f"tags.`mlflow.parentRunId` = '{found.info.run_id}'")
    ranked = sorted(trials, key=lambda run: -run.data.metrics["best_val_accuracy"])
    with tempfile.TemporaryDirectory() as folder:
        table = client.download_artifacts(found.info.run_id, "trials.csv", folder)
        header = open(table).readline().strip().split(",")
    space = [c for c in header if c not in {"trial_id", "status", "score", "reason", "run_id"}]
    return {"name": found.info.run_name, "best_first": [run.info.run_id for run in ranked],
            "space": space}


def test_ui_prints_the_runs_table_and_the_searchs_view_urls(ui):
    assert "bound to 127.0.0.1 only" in ui["printed"]
    assert ui["lecture_digits"].endswith("?workflowType=machine_learning")
    assert "viewStateShareKey=" in printed_url(ui, "trials of ")
    assert "compareRunsMode=CHART" in printed_url(ui, "compare the trials")


def test_runs_table_lists_the_search_and_its_trials(ui, page):
    page.goto(ui["lecture_digits"])
    page.get_by_text("lecture_cnn digits search").first.wait_for(timeout=60_000)
    row = page.locator("[role=row]", has_text="lecture_cnn digits search").first
    row.locator("button[data-component-id*='runnamecellrenderer']").first.click()
    for trial in range(3):
        page.get_by_text(f"lecture_cnn digits trial {trial}", exact=True).first.wait_for(
            timeout=30_000)
    page.screenshot(path=SHOTS / "runs_table.png", full_page=True)
    assert_model_training_view(page)


def test_a_trial_page_shows_its_params_and_metrics(ui, page):
    client = MlflowClient(ui["uri"])
    experiment = client.get_experiment_by_name("lecture_digits")
    (trial,) = client.search_runs([experiment.experiment_id],
                                  "tags.`trial_id` = '0'")
    page.goto(dashboard.run_url(ui["base"], experiment.experiment_id, trial.info.run_id))
    page.get_by_text("filters_1").first.wait_for(timeout=60_000)
    body = page.inner_text("body")
    page.screenshot(path=SHOTS / "trial_run.png", full_page=True)
    assert_model_training_view(page)
    assert "lecture_cnn digits trial 0" in body
    for name in ("filters_1", "kernel_size_1", "strides_1", "padding_1", "flops_per_image",
                 "val_accuracy", "images_per_second"):
        assert name in body
    assert f"{trial.data.metrics['val_accuracy']:.4f}"[:5] in body
    # its hyperparameters and the facts comparing needs; the config is its config.json
    assert f"Parameters ({len(trial.data.params)})" in body and "train.batch_size" not in body
    # What a person sees on scrolling down: the metric and parameter tables themselves.
    for name, shot in (("val_accuracy", "trial_run_metrics.png"),
                       ("filters_1", "trial_run_params.png")):
        cell = page.get_by_text(name, exact=True).first
        cell.scroll_into_view_if_needed()
        assert cell.is_visible()
        page.screenshot(path=SHOTS / shot)


def test_the_searchs_view_lists_its_trials_best_first(ui, page, search):
    page.goto(printed_url(ui, "trials of "))
    page.locator(".ag-row[row-index='2']").first.wait_for(timeout=60_000)
    page.get_by_text("Sort: best_val_accuracy").first.wait_for(timeout=30_000)
    page.screenshot(path=SHOTS / "trials_best_first.png", full_page=True)
    assert_model_training_view(page)
    rows = page.eval_on_selector_all(
        ".ag-center-cols-container .ag-row[row-index]",
        "rows => rows.map(r => [Number(r.getAttribute('row-index')), r.getAttribute('row-id')])")
    # the trials, best first, and nothing else: not the search's run, not other runs
    assert [run_id for _, run_id in sorted(rows)] == search["best_first"]
    assert f"{search['name']}: trials by best_val_accuracy" in page.inner_text("body")


def test_the_searchs_chart_view_draws_its_space_against_the_score(ui, page, search):
    page.goto(printed_url(ui, "compare the trials"))
    page.get_by_text("Parallel Coordinates").first.wait_for(timeout=60_000)
    chart = page.locator(".parcoords").first
    chart.locator(".dimension .label").last.wait_for(timeout=60_000)
    page.screenshot(path=SHOTS / "compare.png", full_page=True)
    card = page.locator("[data-testid='experiment-view-compare-runs-card']", has=chart).first
    card.screenshot(path=SHOTS / "compare_parallel_coordinates.png")
    assert_model_training_view(page)
    # the axes, left to right, as the chart's d3 data and as the labels a person reads
    axes = chart.locator(".dimension").evaluate_all("axes => axes.map(a => a.__data__)")
    assert axes == [*search["space"], "best_val_accuracy"]
    labels = chart.locator(".dimension .label").all_text_contents()
    assert labels[:-1] == search["space"]
    shortened = chart.locator(".axis-label-tooltip text").all_text_contents()
    assert labels[-1] == "best_val_accuracy" or (
        "..." in labels[-1] and "best_val_accuracy" in shortened)
    assert "Showing all runs" in card.inner_text()
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 300
