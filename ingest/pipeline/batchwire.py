"""A batch as it goes on the wire: its samples as they are, or zlib-compressed.

daphne does not negotiate permessage-deflate, so the agent compresses the
batch itself when the console's ``welcome`` says it takes ``zlib``
(``"compression": "zlib"``): the samples, already one msgpack array in the
spool, go as ``zsamples``, that array deflated at level 1. Telemetry is
repetitive (the same field names, identities and near-equal numbers in every
sample), so a batch shrinks 5-10x for about 1 ms of agent CPU per 100 kB:
a slow link carries the fleet instead of spooling it. Limits (the console's
``max_message``, the frame limit) apply to the batch before compression, so
the console can bound what it inflates by the same number.
"""

from __future__ import annotations

import zlib

import msgpack

ZLIB = "zlib"
SAMPLES_KEY = msgpack.packb("samples")
ZSAMPLES_KEY = msgpack.packb("zsamples")


def batch_prefix(instance: str) -> bytes:
    """The bytes every batch message of ``instance`` starts with, up to its id."""
    return (b"\x84" + msgpack.packb("t") + msgpack.packb("batch") + msgpack.packb("instance")
            + msgpack.packb(instance) + msgpack.packb("id"))


def batch_message(prefix: bytes, batch_id: int, samples: bytes, compress: bool) -> bytes:
    """The message of one batch: ``samples`` is its packed msgpack array."""
    head = prefix + msgpack.packb(batch_id)
    if compress:
        return head + ZSAMPLES_KEY + msgpack.packb(zlib.compress(samples, 1), use_bin_type=True)
    return head + SAMPLES_KEY + samples
