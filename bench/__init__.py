"""The benchmarks, a package so that each runs as ``python -m bench.NAME`` from the repository root.

``bench.agent`` (the agent's receive path against the reference ingester),
``bench.console_load`` (the console's write throughput, Redis bytes and
datagram-to-client latency), ``bench.pages`` (the pages against the
reference's), ``bench.tabs``, ``bench.redis_bytes`` and the fuzzers
``bench.fuzz_wire`` and ``bench.fuzz_pipeline``. Processes (redis-server,
console workers, agents, simulators) come from the stack launcher
(stack/), as in the tests and the demo; results go to bench/results/.
"""
