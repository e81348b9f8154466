"""KerasTuner searches over cnnkeras builders, logged to MLflow.

``tuning.spaces`` holds search spaces (functions ``hp -> config``), and
``tuning.search.run_search`` is the entry point ``cnnkeras tune`` calls.
"""
