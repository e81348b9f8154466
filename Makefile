# The front door. `make tune` and `make test` set up .venv themselves on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The stamp is keyed on the requirements and the package metadata: change either and the
# next target reinstalls.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)
EXPERIMENT ?= lecture_digits
ARCH ?= lecture_cnn
DATASET ?= digits
ARGS ?=
export PYTHONUNBUFFERED = 1

.PHONY: setup test test-no-onednn tune tune-distributed train train-multiworker transfer ui bench lint

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# Two test processes by default, one per core of a small machine; a test file stays in one
# process, so its fixtures are built once. TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 $(ARGS)

# The layers and architectures again on TensorFlow's plain CPU kernels (as on CPUs without
# oneDNN: AMD before Zen 4, ARM, Apple), whatever CPU this machine has.
test-no-onednn: $(STAMP)
	TF_ENABLE_ONEDNN_OPTS=0 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests/layers tests/architectures $(ARGS)

tune: $(STAMP)
	$(PY) -m cnnkeras tune $(EXPERIMENT) $(ARGS)

# KerasTuner chief/worker search on this machine: a chief and WORKERS workers on 127.0.0.1
WORKERS ?= 2
tune-distributed: $(STAMP)
	$(PY) -m tuning.distributed --workers $(WORKERS) $(EXPERIMENT) $(ARGS)

train: $(STAMP)
	$(PY) -m cnnkeras train $(ARCH) --dataset $(DATASET) $(ARGS)

# A local rehearsal of a cluster run: WORKERS processes on 127.0.0.1, each with its TF_CONFIG.
train-multiworker: $(STAMP)
	$(PY) -m cnnkeras.launch --workers $(WORKERS) -- $(PY) -m cnnkeras train $(ARCH) --dataset $(DATASET) --strategy multi_worker $(ARGS)

# Inception v3 transfer learning; e.g. make transfer DATA=folder:../shared/data/flowers WEIGHTS=none
DATA ?= tf_flowers
WEIGHTS ?= imagenet
IMAGE_SIZE ?= 299
EPOCHS ?= 10
BATCH_SIZE ?= 32
transfer: $(STAMP)
	$(PY) -m cnnkeras transfer --data $(DATA) --weights $(WEIGHTS) --image-size $(IMAGE_SIZE) --epochs $(EPOCHS) --batch-size $(BATCH_SIZE) $(ARGS)

ui: $(STAMP)
	$(PY) -m cnnkeras ui $(ARGS)

# Side-by-side benchmarks (never part of `make test`); tables land in benchmarks/results/.
# e.g. make bench ARGS="--quick --mnist idx:DIR" or ARGS="--only precision,roofline"
bench: $(STAMP)
	$(PY) -m benchmarks $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check cnnkeras experiments tuning tests benchmarks
