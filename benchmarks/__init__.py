"""Benchmarks: `python -m benchmarks [--quick] [--only ack|polling|notify]` (not part of the test run).

Every figure is a ratio to a baseline measured in the same run on the same machine; see each module.
"""
