"""The agent's pipeline: socket, receive and decode threads, process table, spool, uplink.

Everything that has a thread, a socket, a file or a clock; it builds the
samples of ``ingest.model`` and sends them to the console.
"""
