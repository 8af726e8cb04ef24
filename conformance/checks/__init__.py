"""Atomic checks over observed exchanges and DTS outcomes.

Each returns a ``Check`` and decides nothing else: the case that calls it names the requirement
and the severity. Checks never raise on bad input (a DTS may send anything); they report it.

One module per family of requirements; cases use them through this package (``checks.send_body``).
"""

from .core import *            # noqa: F401,F403  the SOAP frame, message texts, what the user was told
from .documents import *       # noqa: F401,F403  DOC-02, DOC-03, TXT-02..06
from .envelope import *        # noqa: F401,F403  ENV-02, ENV-04..08, CAP-01
from .product_files import *   # noqa: F401,F403  SEC-01, SEC-02
from .reliability import *     # noqa: F401,F403  REL, RPL
from .signatures import *      # noqa: F401,F403  SIG, SEC-04..06
from .transport import *       # noqa: F401,F403  TRN, REL-04
