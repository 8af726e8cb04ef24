"""Put on PYTHONPATH by tests/test_fair_under_load.py: run o3's conditions (fair14). The gateway's event loop
is stalled 1.0 s before it accepts each connection (the kernel has completed the handshake; the DTS's attempt
has begun), answers at once, and for a declaration's first attempt is stalled 0.6 s again between committing
the reply and writing it. By the gateway's clock that reply left within 0.1 s of the accept; by the DTS's, its
t_send (1.5 s at time scale 0.05) ran out first, and it retransmitted (REL-03)."""

import time

from mock_server import app, connections, faults

_accept, _shape, _transmit = connections.Tracked.__init__, faults.shape, app.transmit
_late_write = [False]


def _late_accept(self, *args, **kwargs):
    time.sleep(1.0)
    _accept(self, *args, **kwargs)


def _note_first_attempt(gw, ex, response):
    response = _shape(gw, ex, response)
    if ex.attempt == 1 and ex.header.get("Subject/function") == "8":
        _late_write[0] = True
    return response


async def _late_transmit(*args, **kwargs):
    if _late_write[0]:
        _late_write[0] = False
        time.sleep(0.6)
    return await _transmit(*args, **kwargs)


connections.Tracked.__init__, faults.shape, app.transmit = _late_accept, _note_first_attempt, _late_transmit
