"""Benchmarks (``make bench``). Each arm runs in its own child process so its peak memory can be measured."""
