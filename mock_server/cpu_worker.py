"""One CPU worker process (``cpu_pool``): ``pipeline.prepare`` on each request's octets, and where its
secrets are (``redaction.find_secrets``).

Started by ``cpu_pool`` as ``python -c "...cpu_worker.main(...)" PROFILE_ID...``; frames (``multiprocessing.connection``)
arrive on stdin and results leave on stdout, which nothing else may write to (fd 1 is pointed at
stderr). It holds no gateway state: only the accepted profiles, read-only.
"""

from __future__ import annotations

import os
import pickle
import sys
from multiprocessing.connection import Connection

READY = b"ready"
NICENESS = 5


def main(profile_ids: list[str]) -> int:
    requests, results = Connection(os.dup(0), writable=False), Connection(os.dup(1), readable=False)
    os.dup2(2, 1)                            # a stray print never corrupts the frames
    sys.stdout = sys.stderr
    try:     # below the gateway's event loop: replies, evidence and connections never wait behind a parse
        os.nice(NICENESS)
    except (AttributeError, OSError):
        pass
    from . import pipeline
    from .accepted import AcceptedProfiles
    gateway = AcceptedProfiles(profile_ids)   # all that prepare reads of a gateway; the schema explainers
    # (a second) are built by the first refused document, within its budget: most runs never refuse one
    results.send_bytes(READY)
    while True:
        try:
            known = pickle.loads(requests.recv_bytes())
            body = requests.recv_bytes()
        except (EOFError, OSError):          # the gateway stopped
            return 0
        results.send_bytes(pickle.dumps(pipeline.portable_preparation(gateway, body, known)))

