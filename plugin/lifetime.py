"""Child processes that end when the process that started them dies, however it dies.

`backstride serve` supervises a web server and a queue worker, and `backstride demo` (and the end-to-end
tests) start `backstride serve`. A parent killed with SIGKILL runs no clean-up of its own: without this, its
children would keep running with parent pid 1, holding the port that a restart needs. Linux can deliver a
signal to a child when its parent dies (prctl PR_SET_PDEATHSIG); elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    # Loaded here, in the parent: the function below runs in the child between fork and exec, where loading
    # a library could wait on a lock another thread of the parent held at the fork.
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def ending_with_parent(
    then: Callable[[], object] | None = None, sig: int = signal.SIGTERM
) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child receives `sig` when this process dies.

    Linux sends it when the thread that started the child ends, so start children from a thread that lives
    as long as they should (the main thread). `then` runs next in the child (a nice value, say)."""
    parent = os.getpid()

    def in_child() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
            if os.getppid() != parent:  # the parent died between the fork and the prctl: no signal comes
                os.kill(os.getpid(), sig)
        if then is not None:
            then()

    return in_child
