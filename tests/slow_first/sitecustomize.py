"""Put on PYTHONPATH by tests/test_fair_under_load.py: the gateway of the ``ecdi run`` it starts answers every
first attempt of a declaration (function 8) ``ECDI_SLOW_FIRST_S`` seconds late (default 2 s, beyond the
reference DTS's t_send of 1.5 s at time scale 0.05), as a gateway starved by the machine's load does. The
scenario's own fault on the reply stays; only its delivery waits. The DTS times out and retransmits (REL-03).
With ``ECDI_SLOW_ATTEMPTS`` = n the first n attempts are late: more than the DTS's n_retry, and its outcome is
unknown and it queries (REL-08)."""

import os

from mock_server import faults

_shape = faults.shape
SECONDS = float(os.environ.get("ECDI_SLOW_FIRST_S", "2.0"))
ATTEMPTS = int(os.environ.get("ECDI_SLOW_ATTEMPTS", "1"))     # the first ATTEMPTS attempts of each declaration


def _slow_first(gw, ex, response):
    response = _shape(gw, ex, response)
    if 1 <= ex.attempt <= ATTEMPTS and ex.header.get("Subject/function") == "8" and response.delivery.mode == "normal":
        late = response.delivery
        response.delivery = faults.Delivery(delay=max(late.delay, SECONDS), headers=late.headers)
    return response


faults.shape = _slow_first
