"""Console benchmark: real daphne workers, a private Redis, protocol-speaking agents.

    .venv/bin/python -m bench.console_load
        [--quick] [--skip throughput,capture,sweep,two,bytes,latency]
        [--agents 1,10,50] [--two-agents 2,10,50] [--duration 10]
        [--batch 250] [--batch-sweep 50,500] [--latency 100x1,1000x4,1000x1]
        [--pyspy /tmp/pyspy/bin/py-spy] [--settings MODULE] [--no-save]

Everything runs against a redis-server this script starts on a free port
(``--save '' --appendonly no``), so FLUSHALL, INFO and MEMORY are ours, and
against ``daphne console.asgi:application`` workers started with production
settings (DEBUG=0, SQLite in a temporary directory, REDIS_URL = that Redis).
Measures, against the targets it prints as PASS/FAIL (TARGET_*):

1. **Write throughput of ONE worker.** N load agents (1, 10, 50), each a
   host with its own agent token, speak docs/agent-protocol.md over
   ``websockets`` as ``ingest.pipeline.uplink`` does (hello, welcome, heartbeat every
   5 s, binary msgpack batches, up to ``--window`` = 16 batches in flight,
   permessage-deflate offered; after a drop they reconnect within 0.5 s and
   go on above ``welcome.acked``). Batches hold ``--batch`` samples (250: the
   250 ms batch of a 1,000-process host at 1 Hz) cut from a pool of
   real-looking samples: ``ingest.commands.simulate.busy_ticks`` over ``--procs``
   pids, decoded by ``ingest.pipeline.samples.replay`` and msgpack-encoded by
   ``ingest.pipeline.spool.encode`` (the agent's own encoding, ~2.4 KB a sample), the
   pids spread over ``--groups`` process groups. Each batch's stamps are
   rewritten in place to the 250 ms before it is sent, so every write lands
   in live 1 s / 10 s / 1 min frames and the workers' per-second publishers
   read real data. Counted: samples acknowledged (``ack.written``) during
   ``--duration`` s after a warm-up; ack round trips; CPU of every process;
   Redis command stats; consumer crashes in the worker logs; and what one
   ``/ws/live/`` subscriber of host 1 receives meanwhile (frames, gaps,
   ``status`` messages saying the store is down). Extra runs: the real
   captures (``capture``: all kinds, stamps shifted to now) and other batch
   sizes (``--batch-sweep``; the workers take messages and frames up to the
   console's limit, 4 MiB, as the README's daphne command sets).
2. **The same with TWO workers** on one Redis, agents split between ports.
3. **Redis bytes per process-second** for the newest minute, by
   ``bench/redis_bytes.py``'s ``measure`` (MEMORY USAGE of every key it
   wrote): the real captures A-E, and simulated fleets (``Fleet``, 60 s).
4. **Datagram-to-client latency.** Real agents (``python -m ingest serve
   --console ws://...``) are fed in real time (1 Hz ticks, each process at
   its own phase, paced as ``ingest.commands.simulate.run`` does) by a sender that
   logs when it sent each datagram and which 1 s frame it belongs to
   (``sample_time``). Clients subscribed to each host over
   ``/ws/live/`` with a user API token record every ``host.frame``. Reported:
   * tick to client: for every kind-2 tick (the request metrics the charts
     show), arrival of the frame of its second minus the time it was sent:
     how old a datagram is when a browser can first show it (the
     "datagram to browser" target, p99 <= 250 ms, is judged on this);
     "any datagram" counts every kind (GC events belong to the second they
     started in, so some look younger);
   * newest tick: per frame, arrival minus the newest tick of that second;
   * frame age: arrival minus the end of the frame's second, ``t + 1``;
   * its parts: the console's publish moment (``frame.now``) minus ``t + 1``,
     and fan-out (arrival minus ``frame.now``);
   * when the second was complete in Redis (its tick count polled every
     50 ms): the earliest a frame could be published without missing data.

Results: bench/results/console-<UTC>.json and console-latest.json, and a
Markdown summary with PASS/FAIL per target (exit status 3 when one fails).
``--pyspy PATH`` samples one worker (``--native``: C frames such as the
cyclic GC show) during an extra 1-worker run and adds its hottest functions.
``--settings MODULE`` runs the workers with another settings module (on
PYTHONPATH) to try a change without editing the product. The machine may be
shared: the CPU the rest of it used during each point is "other cores".

Modules: ``common`` (constants, CPU and percentile helpers), ``env`` (Redis,
database, workers: the stack launcher's), ``load`` (the load agents' child
process, ``_load``), ``live`` (the live client, the Redis poller and the
logging sender, ``_sim``), ``throughput`` (parts 1-3), ``latency`` (part
4), ``report`` (targets, Markdown, py-spy) and ``__main__``.
"""
