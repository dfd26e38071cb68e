"""The shared model: what a sample, a frame and a metric are, for the agent and the console.

Pure: no I/O, no threads, no clock, and no import of anything else of the
project (``tests/test_layering.py``). The agent's pipeline
(``ingest.pipeline``) builds samples with it; the console
(``console.windows``, ``console.live``) stores, merges and shows them with
it, and imports nothing else of ``ingest``.
"""
