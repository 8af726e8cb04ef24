"""The body of one CPU worker process (``cpu_pool``): ``pipeline.prepare`` on each request's octets.

Imported by the forkserver before any worker is forked (``cpu_pool._PRELOAD``), so the codec, the
schemas of every built-in profile and the signature library are loaded once and shared by every
worker it forks. It holds no gateway state: only the profiles, read-only.
"""

from __future__ import annotations

import pickle
from multiprocessing.connection import Connection

from conformance.profile import list_profiles, load_profile

from . import pipeline
from .accepted import AcceptedProfiles

for _profile_id in list_profiles():          # parsed and compiled before the fork, shared by every worker
    load_profile(_profile_id)


def serve(conn: Connection, profile_ids: tuple[str, ...]) -> None:
    gateway = AcceptedProfiles(list(profile_ids))   # all that prepare reads of a gateway
    while True:
        try:
            body = conn.recv_bytes()
        except (EOFError, OSError):          # the gateway stopped
            return
        conn.send_bytes(pickle.dumps(pipeline.prepared_elsewhere(gateway, body)))
