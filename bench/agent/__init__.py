"""Agent receive benchmark: our ``ingest`` agent against the reference ingester.

    python3 -m bench.agent [--quick] [--rates 1000,4000,max] [--duration 3]
                           [--workloads capture,sim-1,sim-100,sim-1000] [--qlen 10,512]

For every workload and offered rate, each receiver (ours, then the
reference, in the same run) is started on a fresh socket; a sender in its
own process offers datagrams for ``--duration`` seconds, then the receiver
is left to finish what it holds, stopped with SIGTERM and asked how many
datagrams it handled.

Workloads:
  capture   the 6,750 real datagrams of tests/data/wire-vectors/raw, replayed in a loop
  sim-N     busy request-metrics ticks from ``ingest.commands.simulate.busy_ticks`` round-robin over
            N pids (generated once per run); the sender renumbers each pid's seqs 2, 3, ...
            and keeps counting pass after pass, so a receiver's seq-gap count is real loss

Sending: paced rates use non-blocking ``sendto`` (MSG_DONTWAIT), the way
mod_wsgi sends; the datagrams due are sent at every ``--tick-us`` boundary
(1 ms). EAGAIN means the kernel queue (``net.unix.max_dgram_qlen``) was
full: the datagram is lost to the receiver and counted. The paced sender
runs at SCHED_FIFO priority (``--sender-rt``; it sleeps between ticks) so a
late wake-up does not turn into a burst larger than the kernel queue, which
would be the sender's loss, not the receiver's. Note that at 1 ms ticks,
20,000/s and more means batches of 20+ datagrams against a queue of 10: a
receiver that is not already waiting in ``recv`` on the other core loses
some whatever its throughput. The ``max`` rate is a connected, *blocking*
sender that waits for room, so it measures how fast the receiver drains
the socket, not how fast the sender can overflow it.

Measures (per receiver process, all threads): CPU from
``/proc/PID/task/*/schedstat`` (ns resolution) between the start of sending
and the moment the receiver went idle after the sender stopped; wall time
over the same span; handled = datagrams the receiver took and processed
(ours: decoded + malformed; reference: total_received). Loss % is
(offered - handled) / offered over counts. Also recorded: CPU per receiver
thread, the kernel's share of it, and "other load" -- CPU the rest of the
machine used meanwhile (other jobs make a point noisy; rerun or --repeat).

Results go to bench/results/agent-<UTC>.json and agent-latest.json; a
Markdown summary is printed (``--report FILE`` prints it again from a
results file). Targets (``targets``) are printed as PASS/FAIL;
the exit status is 3 when one fails, 1 when a point could not be run.

``BENCH_PROFILE_DIR=DIR`` runs our agent under cProfile (every thread;
one .prof file per run in DIR) -- slower, for finding hot spots only; with
``BENCH_PYSPY=/path/to/py-spy`` as well, py-spy samples our unmodified agent
instead (collapsed stacks, one .txt per run in DIR).

Modules: ``common`` (paths, defaults), ``workload`` (the datagrams and the
sender's child process, ``_send``), ``measure`` (one receiver at one rate,
the kernel queue length), ``report`` and ``__main__`` (which also runs our
agent under cProfile for ``_profile_ours``).
"""
