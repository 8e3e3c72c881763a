/*
 * Child processes, per-test directories and bounded waits for the
 * process-level tests. See proc.h for the contracts.
 */
#define _GNU_SOURCE
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#define ET_PROC_DESTROY_TIMEOUT_MS 5000
#define ET_LOG_TAIL_LINES 40

struct et_proc {
    char **argv;        /* NULL-terminated copy */
    char *log_path;
    pid_t pid;          /* -1 when not running */
    int last_status;    /* wait status of the last exit, -1 if none yet */
    bool stop_requested; /* stop or kill was called since the last start */
};

struct et_path_node {
    struct et_path_node *next;
    char path[];
};

struct et_proc_node {
    struct et_proc_node *next;
    char *name;
    struct et_proc *proc;
};

struct et_test_env {
    char *dir;
    bool passed;
    struct et_path_node *paths;    /* strings handed out, freed at destroy */
    struct et_proc_node *procs;    /* newest first */
};

long long et_test_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- child processes ------------------------------------------------------ */

static void free_argv(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

static char **copy_argv(const char *const argv[])
{
    size_t n = 0;
    char **copy;

    while (argv[n])
        n++;
    copy = calloc(n + 1, sizeof(*copy));
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        copy[i] = strdup(argv[i]);
        if (!copy[i]) {
            free_argv(copy);
            return NULL;
        }
    }
    return copy;
}

/*
 * The child reports a failed exec through a close-on-exec pipe: a
 * successful exec closes it with nothing written, so the parent's read
 * returns 0; a failure writes errno. This turns "no such program" into an
 * error from start instead of a mysterious exit status later.
 */
static void child_exec(const struct et_proc *p, pid_t parent, int report_fd)
{
    int err;
    int log_fd;
    int null_fd;

    /* Die with the test process, whatever kills it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
    log_fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0)
        goto fail;
    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0)
        goto fail;
    /* Signals the test process ignores or blocks must not leak into the child. */
    {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
    }
    execvp(p->argv[0], p->argv);
fail:
    err = errno;
    if (write(report_fd, &err, sizeof(err)) != (ssize_t)sizeof(err))
        _exit(126);
    _exit(127);
}

static int spawn(struct et_proc *p)
{
    int report[2];
    int child_err = 0;
    ssize_t n;
    pid_t parent = getpid();
    pid_t pid;

    if (pipe2(report, O_CLOEXEC) != 0)
        return -errno;
    /* Flush our buffers so the child does not inherit and repeat them. */
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        int err = -errno;

        close(report[0]);
        close(report[1]);
        return err;
    }
    if (pid == 0) {
        close(report[0]);
        child_exec(p, parent, report[1]);
    }
    close(report[1]);
    do {
        n = read(report[0], &child_err, sizeof(child_err));
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof(child_err)) {
        int status;

        waitpid(pid, &status, 0);
        return -child_err;
    }
    p->pid = pid;
    p->stop_requested = false;
    return 0;
}

int et_proc_start(struct et_proc **out, const char *log_path, const char *const argv[])
{
    struct et_proc *p;
    int rc;

    *out = NULL;
    if (!argv || !argv[0] || !log_path)
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->pid = -1;
    p->last_status = -1;
    p->argv = copy_argv(argv);
    p->log_path = strdup(log_path);
    if (!p->argv || !p->log_path) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = spawn(p);
    if (rc < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    free_argv(p->argv);
    free(p->log_path);
    free(p);
    return rc;
}

/* Reap without blocking; true when it is gone (or was never running). */
static bool reap(struct et_proc *p)
{
    int status;
    pid_t r;

    if (p->pid < 0)
        return true;
    do {
        r = waitpid(p->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        return false;
    if (r == p->pid)
        p->last_status = status;
    p->pid = -1;        /* r < 0: not our child any more (ECHILD); nothing to wait for */
    return true;
}

int et_proc_signal(struct et_proc *p, int sig)
{
    if (reap(p))
        return -ESRCH;
    return kill(p->pid, sig) == 0 ? 0 : -errno;
}

bool et_proc_running(struct et_proc *p)
{
    return !reap(p);
}

int et_proc_wait_exit(struct et_proc *p, int timeout_ms, int *status)
{
    long long deadline = et_test_now_ms() + timeout_ms;
    long pause = 5;

    for (;;) {
        if (reap(p)) {
            if (status)
                *status = p->last_status;
            return 0;
        }
        if (et_test_now_ms() >= deadline)
            return -ETIMEDOUT;
        sleep_ms(pause);
        if (pause < 50)
            pause *= 2;
    }
}

int et_proc_restart(struct et_proc *p)
{
    if (!reap(p))
        return -EBUSY;
    return spawn(p);
}

int et_proc_kill(struct et_proc *p)
{
    int status;

    p->stop_requested = true;
    if (reap(p))
        return 0;
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            p->pid = -1;
            return 0;
        }
    }
    p->last_status = status;
    p->pid = -1;
    return 0;
}

int et_proc_stop(struct et_proc *p, int timeout_ms, int *status)
{
    p->stop_requested = true;
    if (reap(p)) {
        if (status)
            *status = p->last_status;
        return 0;
    }
    kill(p->pid, SIGTERM);
    /* A stopped (SIGSTOP) process would hold the SIGTERM until the deadline. */
    kill(p->pid, SIGCONT);
    if (et_proc_wait_exit(p, timeout_ms, status) == 0)
        return 0;
    et_proc_kill(p);
    if (status)
        *status = p->last_status;
    return -ETIMEDOUT;
}

bool et_proc_exited_unasked(struct et_proc *p)
{
    return reap(p) && !p->stop_requested;
}

int et_proc_last_status(const struct et_proc *p)
{
    return p->last_status;
}

pid_t et_proc_pid(const struct et_proc *p)
{
    return p->pid;
}

const char *et_proc_log_path(const struct et_proc *p)
{
    return p->log_path;
}

bool et_proc_log_contains(const struct et_proc *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    char *line = NULL;
    size_t cap = 0;
    bool found = false;

    if (!f)
        return false;
    while (!found && getline(&line, &cap, f) >= 0)
        found = strstr(line, needle) != NULL;
    free(line);
    fclose(f);
    return found;
}

void et_proc_destroy(struct et_proc *p)
{
    if (!p)
        return;
    et_proc_stop(p, ET_PROC_DESTROY_TIMEOUT_MS, NULL);
    free_argv(p->argv);
    free(p->log_path);
    free(p);
}

int et_test_run(const char *log_path, const char *const argv[], int timeout_ms)
{
    struct et_proc *p;
    int status = -1;
    int rc = et_proc_start(&p, log_path, argv);

    if (rc < 0)
        return rc;
    rc = et_proc_wait_exit(p, timeout_ms, &status);
    et_proc_destroy(p);
    if (rc < 0)
        return rc;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* ---- per-test environment ------------------------------------------------- */

int et_test_env_create(struct et_test_env **out, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    struct et_test_env *env;
    int rc;

    *out = NULL;
    if (!tmp || !*tmp)
        tmp = "/tmp";
    env = calloc(1, sizeof(*env));
    if (!env)
        return -ENOMEM;
    if (asprintf(&env->dir, "%s/edgetel-%s-XXXXXX", tmp, name) < 0) {
        env->dir = NULL;
        rc = -ENOMEM;
        goto fail;
    }
    if (!mkdtemp(env->dir)) {
        rc = -errno;
        fprintf(stderr, "test: cannot make a temporary directory %s: %s\n",
                env->dir, strerror(errno));
        goto fail;
    }
    *out = env;
    return 0;
fail:
    free(env->dir);
    free(env);
    return rc;
}

void et_test_env_pass(struct et_test_env *env)
{
    env->passed = true;
}

bool et_test_env_passed(const struct et_test_env *env)
{
    return env->passed;
}

const char *et_test_env_dir(const struct et_test_env *env)
{
    return env->dir;
}

const char *et_test_env_path(struct et_test_env *env, const char *name)
{
    size_t len = strlen(env->dir) + 1 + strlen(name) + 1;
    struct et_path_node *node = malloc(sizeof(*node) + len);

    assert_non_null(node);
    snprintf(node->path, len, "%s/%s", env->dir, name);
    node->next = env->paths;
    env->paths = node;
    return node->path;
}

const char *et_test_env_write(struct et_test_env *env, const char *name, const char *fmt, ...)
{
    const char *path = et_test_env_path(env, name);
    va_list ap;
    FILE *f;
    int n;

    f = fopen(path, "w");
    if (!f)
        fail_msg("test: cannot write %s: %s", path, strerror(errno));
    va_start(ap, fmt);
    n = vfprintf(f, fmt, ap);
    va_end(ap);
    if (n < 0 || fclose(f) != 0)
        fail_msg("test: cannot write %s: %s", path, strerror(errno));
    return path;
}

struct et_proc *et_test_env_start(struct et_test_env *env, const char *name,
                                  const char *const argv[])
{
    struct et_proc_node *node = calloc(1, sizeof(*node));
    char log_name[256];
    int rc;

    assert_non_null(node);
    node->name = strdup(name);
    assert_non_null(node->name);
    snprintf(log_name, sizeof(log_name), "%s.log", name);
    rc = et_proc_start(&node->proc, et_test_env_path(env, log_name), argv);
    if (rc < 0) {
        free(node->name);
        free(node);
        fail_msg("test: cannot start %s (%s): %s", name, argv[0], strerror(-rc));
    }
    node->next = env->procs;
    env->procs = node;
    return node->proc;
}

void et_test_print_log_tail(const char *name, const char *path)
{
    FILE *f = fopen(path, "r");
    char *lines[ET_LOG_TAIL_LINES] = { 0 };
    char *line = NULL;
    size_t cap = 0;
    size_t count = 0;
    ssize_t len;

    if (!f) {
        fprintf(stderr, "---- %s: no log (%s)\n", name, path);
        return;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        size_t slot = count % ET_LOG_TAIL_LINES;

        free(lines[slot]);
        lines[slot] = strdup(line);
        count++;
    }
    free(line);
    fclose(f);
    fprintf(stderr, "---- %s: last lines of %s\n", name, path);
    for (size_t i = count > ET_LOG_TAIL_LINES ? count - ET_LOG_TAIL_LINES : 0; i < count; i++) {
        const char *l = lines[i % ET_LOG_TAIL_LINES];

        if (l)
            fprintf(stderr, "  %s%s", l, l[strlen(l) - 1] == '\n' ? "" : "\n");
    }
    for (size_t i = 0; i < ET_LOG_TAIL_LINES; i++)
        free(lines[i]);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (remove(path) != 0)
        fprintf(stderr, "test: cannot remove %s: %s\n", path, strerror(errno));
    return 0;   /* remove what can be removed */
}

void et_test_remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void et_test_env_stop_all(struct et_test_env *env)
{
    /* Newest first: the agent goes before the aggregator and the broker. */
    while (env->procs) {
        struct et_proc_node *node = env->procs;

        env->procs = node->next;
        et_proc_stop(node->proc, ET_PROC_DESTROY_TIMEOUT_MS, NULL);
        if (!env->passed)
            et_test_print_log_tail(node->name, et_proc_log_path(node->proc));
        et_proc_destroy(node->proc);
        free(node->name);
        free(node);
    }
}

void et_test_env_destroy(struct et_test_env *env)
{
    if (!env)
        return;
    et_test_env_stop_all(env);
    if (!env->passed)
        fprintf(stderr, "test: failed; kept its directory for inspection: %s\n", env->dir);
    else if (getenv("ET_TEST_KEEP"))
        fprintf(stderr, "test: passed; kept its directory (ET_TEST_KEEP is set): %s\n", env->dir);
    else
        et_test_remove_tree(env->dir);
    while (env->paths) {
        struct et_path_node *node = env->paths;

        env->paths = node->next;
        free(node);
    }
    free(env->dir);
    free(env);
}

/* ---- bounded waits -------------------------------------------------------- */

bool et_test_poll_until(et_test_pred pred, void *ctx, int timeout_ms)
{
    long long deadline = et_test_now_ms() + timeout_ms;
    long pause = 10;

    for (;;) {
        if (pred(ctx))
            return true;
        if (et_test_now_ms() >= deadline)
            return false;
        sleep_ms(pause);
        if (pause < 100)
            pause += 10;
    }
}

void et_test_wait_until_at(et_test_pred pred, void *ctx, int timeout_ms,
                           const char *what, const char *file, int line)
{
    if (et_test_poll_until(pred, ctx, timeout_ms))
        return;
    print_error("%s:%d: timed out after %d ms waiting for %s\n", file, line, timeout_ms, what);
    _fail(file, line);
}
