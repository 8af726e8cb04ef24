"""Correct products written differently: configurations the timing cases must PASS (never mutants).

``cold-connections`` opens a new TCP connection and a full TLS handshake for every attempt (as the
reference does) but spends a varying time setting each one up, inside the attempt: a short pause before
``connect`` and a long or short one between the TCP connect and the ClientHello (a cold client loading its
trust store, a warm one not), alternating from attempt to attempt. REL-01 starts its ``t_send`` clock at
connection set-up, so a case that timed attempts from request arrival to request arrival would see the
set-up differences as early or late retransmissions (issue 12); the cases must not.
"""

from __future__ import annotations

import itertools
import time

from .dts import ReferenceDTS
from .mutants import Mutant
from .mutants_payment import CONFIGURATIONS
from .transport import Transport, _Adapter, _WatchedConnection, _WatchedPool

BEFORE_CONNECT_S = 0.005          # a pause before connect() that the product counts in the attempt
HANDSHAKE_PAUSES_S = (0.25, 0.01)  # between the TCP connect and the ClientHello: cold, then warm, in turn


class _SlowStartConnection(_WatchedConnection):
    pauses = itertools.cycle(HANDSHAKE_PAUSES_S)

    def _new_conn(self):
        time.sleep(BEFORE_CONNECT_S)
        sock = super()._new_conn()
        time.sleep(next(self.pauses))
        return sock


class _SlowStartPool(_WatchedPool):
    ConnectionCls = _SlowStartConnection


class _SlowStartAdapter(_Adapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _SlowStartPool}


class _SlowStartTransport(Transport):
    def _session(self):
        session = super()._session()
        session.adapters.clear()
        session.mount("https://", _SlowStartAdapter(self._context, check_host=self.tls.check_host))
        return session


class ColdConnections(ReferenceDTS):
    def _sender_for_use(self):
        sender = super()._sender_for_use()
        transport = vars(sender.transport).get("_inner", sender.transport)   # under the driver's fuse
        if type(transport) is Transport:
            transport.__class__ = _SlowStartTransport
        return sender


CONFIGURATIONS.update({c.name: c for c in [
    Mutant("cold-connections", "a correct product whose connection set-up inside each attempt takes 0.25 s and "
           "0.01 s in turn (a cold and a warm client): the timing cases must pass it", [],
           "reliability.resend-after-timeout", ColdConnections),
]})
