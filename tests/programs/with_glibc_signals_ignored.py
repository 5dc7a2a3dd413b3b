#!/usr/bin/env python3
"""Run argv[1:] with glibc's internal signals 32 and 33 ignored, as some launchers leave them.

`signal.signal` cannot touch these two (glibc refuses), so this uses the raw rt_sigaction
syscall; an ignored disposition then survives the exec into argv[1:].
"""

import ctypes
import os
import sys

RT_SIGACTION = {"x86_64": 13, "aarch64": 134}[os.uname().machine]
SIG_IGN = 1

libc = ctypes.CDLL(None, use_errno=True)
action = ctypes.create_string_buffer(64)
ctypes.memmove(action, SIG_IGN.to_bytes(8, sys.byteorder), 8)
for signo in (32, 33):
    if libc.syscall(RT_SIGACTION, signo, action, None, 8) != 0:
        sys.exit(f"rt_sigaction({signo}) failed: {os.strerror(ctypes.get_errno())}")
os.execvp(sys.argv[1], sys.argv[1:])
