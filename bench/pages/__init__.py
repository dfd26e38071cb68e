"""Page benchmark (issue 5): our host page and console beside the reference's, under one load.

    .venv/bin/python -m bench.pages [--quick] [--skip first,cpu,viewers,late,latency] [--keep] [--no-save]

Ours: bench.console_load's ``Env`` (private redis-server, SQLite, one daphne
worker, production settings) and a real agent fed by ``python -m ingest
simulate --groups 5 --processes 10 --threads 4``. The reference:
``mod_wsgi-telemetry serve`` from .venv-reference fed by its ``simulate
--processes 50``. After ``--history`` s (60) of data, headless Chromium
(Debian's, as the browser tests drive it) measures:

1. First data, 50 processes (targets <= 1 MB, <= 1 s): per tab of ours, as a
   logged-in user, and for the reference's page, each in a fresh context: the
   WebSocket payload until the page has its data (ours: hello, host.snapshot,
   tab.snapshot; reference: its snapshot), page weight (Resource Timing), and
   navigation start to the end of the animation frame after the data (the
   reference: after its first 500 ms redraw that follows the snapshot).
   "late" repeats our loads after part 3 (history >= 300 s in a full run).
2. Page CPU: CPU of the whole Chromium process tree (/proc) and CDP
   ``Performance.getMetrics`` TaskDuration/ScriptDuration (wall time of the
   main thread's tasks: inflated when the machine is oversubscribed) for one
   Overview page, five pages (one per tab, each in its own context so its
   renderer is its own) and one reference page.
3. Console CPU with 0/1/10/50 light viewers (target 50 < 2x one): our daphne
   (Redis apart) and the reference's ``serve``; viewers (``websockets``, a
   child process) subscribe as the page did in part 1 (user API token, same
   deflate choice). The reference is restarted before each point (its
   simulator keeps sending) so N viewers do not each pull a multi-megabyte
   snapshot; its steady cost does not depend on history. It caps viewers at 64.
4. Datagram to screen, 100 processes (4 x 25) at 1 Hz from bench.console_load's
   logging sender (``_sim``), for both consoles. Ours: each kind-2 tick is
   attributed to the first host.frame whose ``groups["*"].ticks`` covers it
   (bench.console_load's ``analyse_latency``), and the frame's time is the end
   of the animation frame after it arrived. Reference (one ``sample`` message
   per datagram, redraw every 500 ms): per request-metrics sample, the end of
   the frame after the first redraw that starts after it arrived, minus its
   stamp (the sender stamps a datagram as it sends it).

Each point runs 3 times (``--quick``: once, shorter windows; about 5 min, the
full run about 13) and the table shows medians. The load average is recorded
(the 2-core machines may be shared). Writes bench/results/pages-<UTC>.json and
pages-latest.json; exit status 3 when a target fails. Every process and the
work directory are cleaned up, also on Ctrl-C or SIGTERM.

Modules: ``common`` (tabs, targets), ``probe`` (the script injected into
the pages), ``rig`` (both consoles and their feeds), ``viewers`` (the light
viewers' child process), ``first`` (parts 1-2), ``load`` (parts 3-4),
``report`` and ``__main__``.
"""
