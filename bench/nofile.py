"""Raise this process's open-file soft limit to its hard limit (for thousands of sockets).

Subprocesses inherit the raised limit, so the orchestrator's call covers the servers it starts;
the servers and the load generator call it too so that each runs alone as well.
"""

from __future__ import annotations

import resource


def raise_open_file_limit() -> int:
    """The soft limit after raising it to the hard limit (as far as the kernel allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    # An unlimited hard limit still has the kernel's nr_open above it: ask for a finite number.
    target = hard if hard != infinite else 1 << 20
    if soft == infinite or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target
