"""The cnnops benchmark suite: cnnops against torch.nn.functional, in the same run.

    python -m benchmarks [--device cpu|cuda|auto] [--quick] ...   run the suite (to benchmarks/runs/)
    python -m benchmarks --canonical ...                           a run to keep (benchmarks/results/)
    python -m benchmarks compare OLD.json NEW.json                 compare two runs

Python API (used by the tests): runner.Settings, runner.run_suite, report.write_outputs,
report.write_canonical, history.history_line, compare.compare_results.
"""
