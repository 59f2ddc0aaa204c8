"""Fault injection for tests: SIGKILL this process just before the n-th ``os.replace`` whose
destination contains a text, so a kill lands at an exact point inside a publish.

Put this folder first on ``PYTHONPATH`` of a subprocess and set
``MRI_RECON_KILL_BEFORE_REPLACE=<text>:<n>`` (n counts from 1; ``<text>`` may hold ``:``). Without
the variable nothing is patched. ``tests/faults/__init__`` is absent on purpose: this is
imported by Python's ``site`` module at start-up, never by the tests themselves.
"""

import os
import signal

_spec = os.environ.get("MRI_RECON_KILL_BEFORE_REPLACE")
if _spec:
    _text, _, _n = _spec.rpartition(":")
    _count = [0]
    _replace = os.replace

    def _killing_replace(src, dst, *args, **kwargs):
        if _text in os.fsdecode(dst):
            _count[0] += 1
            if _count[0] == int(_n):
                os.kill(os.getpid(), signal.SIGKILL)
        return _replace(src, dst, *args, **kwargs)

    os.replace = _killing_replace
