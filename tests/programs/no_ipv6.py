"""Run a program on a kernel "without IPv6": socket(AF_INET6, ...) fails with EAFNOSUPPORT.

usage: no_ipv6.py PROGRAM [ARGS...]

A seccomp filter (inherited across exec) makes the kernel refuse AF_INET6 sockets, as a
kernel booted with ipv6.disable=1 does; everything else runs unchanged. x86_64 only.
"""

import ctypes
import os
import struct
import sys

AUDIT_ARCH_X86_64 = 0xC000003E
SYS_SOCKET = 41
AF_INET6 = 10
EAFNOSUPPORT = 97
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
LD_ABS_W, JEQ_K, RET_K = 0x20, 0x15, 0x06
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2

PROGRAM = [  # (code, jump if true, jump if false, k): seccomp_data is nr, arch, ip, args
    (LD_ABS_W, 0, 0, 4),  # arch
    (JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
    (LD_ABS_W, 0, 0, 0),  # syscall number
    (JEQ_K, 0, 3, SYS_SOCKET),
    (LD_ABS_W, 0, 0, 16),  # args[0], low half: the address family
    (JEQ_K, 0, 1, AF_INET6),
    (RET_K, 0, 0, RET_ERRNO | EAFNOSUPPORT),
    (RET_K, 0, 0, RET_ALLOW),
]


def main() -> None:
    filters = b"".join(struct.pack("HBBI", *insn) for insn in PROGRAM)
    buffer = ctypes.create_string_buffer(filters)
    fprog = struct.pack("HxxxxxxP", len(PROGRAM), ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog_buffer, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
