/*
 * The standalone cinit's `cinit`: block the signals cinit owns, then exec the PyInstaller
 * bootloader in libexec/ beside this file, with the same arguments and environment.
 *
 * Why: the kernel discards a signal sent to a PID namespace's init while that signal is
 * neither blocked nor handled, and the bootloader plus the Python start-up take ~10 ms before
 * cinit's first statement can block anything: a `podman stop` in that window was lost. A
 * blocked signal stays pending, the mask and the pending set survive exec, and cinit takes the
 * signal with sigwaitinfo once it runs (it gives its own children an empty mask).
 *
 * Built static (packaging/build-standalone.sh) so that no dynamic loader runs before main.
 * The set must equal cinit.signal_policy.OWNED_SIGNALS (tests/packaging/test_launcher.py checks).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BOOTLOADER "libexec/cinit"

static void block_owned(void)
{
    static const int owned[] = {
        SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT, SIGALRM,
        SIGTTIN, SIGTTOU, SIGCHLD,
    };
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        sigaddset(&set, owned[i]);
    sigaddset(&set, SIGRTMIN + 3); /* systemd's container halt request */
    sigprocmask(SIG_BLOCK, &set, NULL);
}

/* This executable's directory into `dir`: /proc/self/exe, else argv[0] when it is a path. */
static int own_directory(const char *argv0, char *dir, size_t size)
{
    ssize_t length = readlink("/proc/self/exe", dir, size - 1);
    if (length > 0) {
        dir[length] = '\0';
    } else if (argv0 != NULL && strchr(argv0, '/') != NULL && realpath(argv0, dir) != NULL) {
        /* no /proc (a chroot): the path we were run by, resolved */
    } else {
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    block_owned();
    char dir[PATH_MAX];
    char target[PATH_MAX + sizeof BOOTLOADER + 1];
    if (own_directory(argv[0], dir, sizeof dir) != 0) {
        fprintf(stderr, "cinit: cannot find its own directory (is /proc mounted?): %s\n",
                strerror(errno));
        return 127;
    }
    snprintf(target, sizeof target, "%s/%s", dir, BOOTLOADER);
    execv(target, argv);
    int failure = errno;
    if (failure == ENOENT) {
        /* The usual cause: this file was copied on its own (cp bin/cinit /usr/local/bin/). */
        fprintf(stderr,
                "cinit: %s is missing: this cinit is one file of a directory (the bundle),\n"
                "and runs only from inside it. Copy the whole directory (bin/cinit.dist/, or\n"
                "/opt/cinit/ of the release tarball) and put a symlink to its `cinit` on the\n"
                "PATH: cp -a bin/cinit.dist /opt/cinit && ln -s /opt/cinit/cinit /usr/local/bin/cinit\n"
                "(or unpack cinit-VERSION-linux-x86_64.tar.gz at /: it holds both).\n",
                target);
        return 127;
    }
    fprintf(stderr, "cinit: cannot run %s: %s\n", target, strerror(failure));
    return 126;
}
