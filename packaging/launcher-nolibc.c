/*
 * The standalone cinit's `cinit` without a C library (x86_64 and aarch64): the same program
 * as launcher.c (block the signals cinit owns, exec libexec/cinit beside this file with the
 * same arguments and environment), written on raw system calls.
 *
 * Why: launcher.c linked statically against glibc is ~680 KiB, 4% of the whole bundle, for
 * five system calls; this one is a few KiB, and like the static one no dynamic loader runs
 * before the signals are blocked. build-launcher.sh builds it where the architecture is
 * one of these two and falls back to launcher.c elsewhere. Both must block the same set,
 * cinit.signal_policy.OWNED_SIGNALS (tests/packaging/test_launcher.py checks both).
 *
 * Built with -nostdlib -ffreestanding: no libc, no start files; _start below is the entry.
 */

#if defined(__x86_64__)
#define SYS_write 1
#define SYS_rt_sigprocmask 14
#define SYS_execve 59
#define SYS_exit_group 231
#define SYS_readlinkat 267

static long sys4(long number, long a, long b, long c, long d)
{
    long result;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return result;
}

/* The kernel enters with the stack holding argc, argv[], NULL, envp[], NULL. */
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call start_c\n"
        "  hlt\n");
#elif defined(__aarch64__)
#define SYS_write 64
#define SYS_rt_sigprocmask 135
#define SYS_execve 221
#define SYS_exit_group 94
#define SYS_readlinkat 78

static long sys4(long number, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}

__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  bl start_c\n"
        "  brk #0\n");
#else
#error "launcher-nolibc.c: x86_64 and aarch64 only (build-launcher.sh uses launcher.c elsewhere)"
#endif

#define AT_FDCWD (-100)
#define SIG_BLOCK 0
#define PATH_SIZE 4096
#define BOOTLOADER "libexec/cinit"
#define ENOENT 2
#define EACCES 13

/* Linux signal numbers (the same on both architectures). SIGRTMIN+3 is glibc's SIGRTMIN
 * (34, the kernel's 32 plus the two glibc keeps) + 3: what Python's signal.SIGRTMIN + 3 is,
 * systemd's container halt request. */
static const int owned[] = {
    15 /* TERM */, 2 /* INT */, 1 /* HUP */, 10 /* USR1 */, 12 /* USR2 */, 28 /* WINCH */,
    3 /* QUIT */, 14 /* ALRM */, 21 /* TTIN */, 22 /* TTOU */, 17 /* CHLD */, 37 /* RTMIN+3 */,
};

static unsigned long length(const char *text)
{
    unsigned long n = 0;
    while (text[n] != '\0')
        n++;
    return n;
}

static void say(const char *text)
{
    sys4(SYS_write, 2, (long)text, (long)length(text), 0);
}

static void say_number(long value)
{
    char digits[24];
    int at = sizeof digits - 1;
    digits[at] = '\0';
    do {
        digits[--at] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && at > 0);
    say(digits + at);
}

static void say_error(long errno_value)
{
    switch (errno_value) {
    case ENOENT: say("No such file or directory"); break;
    case EACCES: say("Permission denied"); break;
    case 8: say("Exec format error"); break;
    case 20: say("Not a directory"); break;
    case 40: say("Too many levels of symbolic links"); break;
    default: say("error "); say_number(errno_value); break;
    }
}

static __attribute__((noreturn)) void leave(int status)
{
    for (;;)
        sys4(SYS_exit_group, status, 0, 0, 0);
}

/* Append `text` to `buffer` (holding `used` bytes); 0 on success, -1 when it does not fit. */
static int append(char *buffer, unsigned long *used, const char *text)
{
    unsigned long n = length(text);
    if (*used + n + 1 > PATH_SIZE)
        return -1;
    for (unsigned long i = 0; i < n; i++)
        buffer[*used + i] = text[i];
    *used += n;
    buffer[*used] = '\0';
    return 0;
}

/* Cut `path` after its last '/' (keeping the slash); 0, or -1 when it has none. */
static int keep_directory(char *path, unsigned long *used)
{
    unsigned long at = *used;
    while (at > 0 && path[at - 1] != '/')
        at--;
    if (at == 0)
        return -1;
    path[at] = '\0';
    *used = at;
    return 0;
}

/* This executable's path into `path`: /proc/self/exe, else argv[0] (when it is a path) with
 * its symbolic links followed by hand, for a chroot without /proc. */
static int own_path(const char *argv0, char *path, unsigned long *used)
{
    long n = sys4(SYS_readlinkat, AT_FDCWD, (long)"/proc/self/exe", (long)path, PATH_SIZE - 1);
    if (n > 0) {
        path[n] = '\0';
        *used = (unsigned long)n;
        return 0;
    }
    unsigned long slash = 0;
    for (const char *c = argv0; argv0 != 0 && *c; c++)
        slash += *c == '/';
    if (slash == 0)
        return -1;
    *used = 0;
    if (append(path, used, argv0) != 0)
        return -1;
    for (int hops = 0; hops < 40; hops++) {
        char target[PATH_SIZE];
        n = sys4(SYS_readlinkat, AT_FDCWD, (long)path, (long)target, PATH_SIZE - 1);
        if (n <= 0)
            return 0; /* not a symbolic link (any more): the file itself */
        target[n] = '\0';
        if (target[0] == '/')
            *used = 0;
        else if (keep_directory(path, used) != 0)
            return -1;
        if (append(path, used, target) != 0)
            return -1;
    }
    return -1;
}

__attribute__((used)) void start_c(long *stack)
{
    long argc = stack[0];
    char **argv = (char **)(stack + 1);
    char **envp = argv + argc + 1;

    unsigned long set = 0; /* the kernel's sigset_t: one bit per signal, 64 on both */
    for (unsigned long i = 0; i < sizeof owned / sizeof owned[0]; i++)
        set |= 1UL << (owned[i] - 1);
    sys4(SYS_rt_sigprocmask, SIG_BLOCK, (long)&set, 0, sizeof set);

    char target[PATH_SIZE];
    unsigned long used = 0;
    if (own_path(argc > 0 ? argv[0] : 0, target, &used) != 0 ||
        keep_directory(target, &used) != 0) {
        say("cinit: cannot find its own directory (is /proc mounted?)\n");
        leave(127);
    }
    if (append(target, &used, BOOTLOADER) != 0) {
        say("cinit: the path of its directory is too long\n");
        leave(126);
    }
    long failure = -sys4(SYS_execve, (long)target, (long)argv, (long)envp, 0);
    if (failure == ENOENT) {
        /* The usual cause: this file was copied on its own (cp bin/cinit /usr/local/bin/). */
        say("cinit: ");
        say(target);
        say(" is missing: this cinit is one file of a directory (the bundle),\n"
            "and runs only from inside it. Copy the whole directory (bin/cinit.dist/, or\n"
            "/opt/cinit/ of the release tarball) and put a symlink to its `cinit` on the\n"
            "PATH: cp -a bin/cinit.dist /opt/cinit && ln -s /opt/cinit/cinit /usr/local/bin/cinit\n"
            "(or unpack cinit-VERSION-linux-x86_64.tar.gz at /: it holds both).\n");
        leave(127);
    }
    say("cinit: cannot run ");
    say(target);
    say(": ");
    say_error(failure);
    say("\n");
    leave(126);
}
