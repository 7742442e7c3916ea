"""fastl2tp: an L2TPv2 (RFC 2661) LAC and LNS with full PPP.

The protocol machines (``wire``, ``control``, ``ppp``) are pure Python and do no I/O; ``runtime`` drives
them on a uvloop event loop; ``_dp`` (Cython) does all per-packet work.
"""

__version__ = "0.1.0"
