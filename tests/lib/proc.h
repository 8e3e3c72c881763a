/*
 * Process-level test helpers: a per-test temporary directory, the programs
 * under test run as child processes with their output in a log file there,
 * and bounded waits on what they do.
 *
 * Nothing here is process-wide: every test makes its own struct
 * et_test_env, so tests in one executable cannot see each other's state.
 *
 * Typical use in a cmocka test with setup/teardown:
 *
 *   setup:    et_test_env_create(&env, "e2e_basic");
 *   test:     cfg = et_test_env_write(env, "agent.conf", "[agent]\n...", ...);
 *             agent = et_test_env_start(env, "agent", argv);
 *             et_test_wait_until(store_has_all, &ctx, 30000);
 *             et_test_env_pass(env);          (last line of the test)
 *   teardown: et_test_env_destroy(env);
 *
 * Keep setup to creating the env: cmocka runs no teardown after a setup
 * that failed, so anything started there would be left to PDEATHSIG.
 *
 * A failing cmocka assertion leaves the test function early, so
 * et_test_env_pass() is never reached: teardown then keeps the directory,
 * prints its path and the tail of every process log, and still stops every
 * process the test started.
 *
 * Children also get PR_SET_PDEATHSIG(SIGKILL): if the test process itself
 * is killed (a ctest timeout), its programs die with it instead of holding
 * ports and files for the next run.
 */
#ifndef EDGETEL_TEST_PROC_H
#define EDGETEL_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- child processes ------------------------------------------------------ */

struct et_proc;

/**
 * Start argv[0] (searched in PATH when it has no '/') with argv, stdin from
 * /dev/null, stdout and stderr appended to log_path (created if missing).
 * Returns 0, or -errno when the fork fails or the program cannot be
 * executed (the exec error is reported here, not as an exit status).
 * argv and log_path are copied.
 */
int et_proc_start(struct et_proc **out, const char *log_path, const char *const argv[]);

/**
 * Start the same program again with the same arguments and log (appended),
 * after it exited or was stopped or killed. -EBUSY while it still runs.
 */
int et_proc_restart(struct et_proc *p);

/**
 * Ask it to stop: SIGTERM, wait up to timeout_ms for it to exit, then
 * SIGKILL and reap. Returns 0 when it exited by itself within the time
 * (its wait status in *status if not NULL), -ETIMEDOUT when it had to be
 * killed, 0 at once when it was not running.
 */
int et_proc_stop(struct et_proc *p, int timeout_ms, int *status);

/** SIGKILL it (a crash or power cut as far as the program can tell) and reap it. */
int et_proc_kill(struct et_proc *p);

/**
 * Send it a signal that is not meant to end it (SIGSTOP, SIGCONT, SIGHUP).
 * -ESRCH when it is not running.
 */
int et_proc_signal(struct et_proc *p, int sig);

/** Whether it still runs; reaps it (and records its status) if it has exited. */
bool et_proc_running(struct et_proc *p);

/**
 * Wait up to timeout_ms for it to exit by itself. Returns 0 with its wait
 * status in *status, or -ETIMEDOUT (it keeps running).
 */
int et_proc_wait_exit(struct et_proc *p, int timeout_ms, int *status);

/**
 * Whether it has exited without being asked to (no et_proc_stop() or
 * et_proc_kill() since it was last started): a crash, or a refusal to
 * start. Reaps it if it has exited.
 */
bool et_proc_exited_unasked(struct et_proc *p);

/** The wait status of its last exit, -1 if it has not exited yet. */
int et_proc_last_status(const struct et_proc *p);

/** Its pid, or -1 when not running. */
pid_t et_proc_pid(const struct et_proc *p);

/** The log file path (owned by p). */
const char *et_proc_log_path(const struct et_proc *p);

/** Whether its log so far contains needle (case-sensitive). */
bool et_proc_log_contains(const struct et_proc *p, const char *needle);

/** Stop it if running (SIGTERM, up to 5 s, then SIGKILL) and free it. NULL is a no-op. */
void et_proc_destroy(struct et_proc *p);

/**
 * Run a short command (ip, mount, cp) to its end: et_proc_start(), then
 * wait up to timeout_ms. Returns 0 when it exited with status 0, -EIO
 * when it exited otherwise (its output is in log_path), -ETIMEDOUT when
 * it had to be killed, or the start's -errno (-ENOENT: no such program).
 */
int et_test_run(const char *log_path, const char *const argv[], int timeout_ms);

/* ---- per-test environment ------------------------------------------------- */

/** Remove dir and everything in it, what can be removed; each failure is said on stderr. */
void et_test_remove_tree(const char *dir);

struct et_test_env;

/**
 * Make a fresh directory $TMPDIR/edgetel-NAME-XXXXXX (TMPDIR defaults to
 * /tmp). Returns 0 or -errno.
 */
int et_test_env_create(struct et_test_env **out, const char *name);

/** Mark the test as passed: destroy will remove the directory. */
void et_test_env_pass(struct et_test_env *env);

/** Whether et_test_env_pass() was called. */
bool et_test_env_passed(const struct et_test_env *env);

/**
 * Stop every process started through this env (SIGTERM, bounded, then
 * SIGKILL), then remove the directory if the test passed (unless the
 * environment variable ET_TEST_KEEP is set, for a look at a passing run);
 * otherwise keep it, print its path and the last lines of each process log
 * to stderr.
 * NULL is a no-op.
 */
void et_test_env_destroy(struct et_test_env *env);

/**
 * Stop every process started through this env, newest first (SIGTERM,
 * bounded, then SIGKILL), and forget them; on a failed test first print
 * the last lines of each one's log. For a fixture that must stop its
 * programs before something else it owns (a broker) goes, and only then
 * let the directory go. et_test_env_destroy() does this itself.
 */
void et_test_env_stop_all(struct et_test_env *env);

/** The directory (owned by env). */
const char *et_test_env_dir(const struct et_test_env *env);

/**
 * DIR/name as a string owned by env (valid until destroy). Fails the
 * running test when out of memory, so it never returns NULL.
 */
const char *et_test_env_path(struct et_test_env *env, const char *name);

/**
 * Write DIR/name from a printf format (a config file, a script) and return
 * its path (owned by env). Fails the running test when the file cannot be
 * written, naming the file and the cause.
 */
const char *et_test_env_write(struct et_test_env *env, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * et_proc_start() with the log at DIR/NAME.log; the env owns the process and
 * stops it in et_test_env_destroy(). Fails the running test when the program
 * cannot be started, naming it and the cause.
 */
struct et_proc *et_test_env_start(struct et_test_env *env, const char *name,
                                  const char *const argv[]);

/** Print the last lines of a log file to stderr under a "---- name" header. */
void et_test_print_log_tail(const char *name, const char *path);

/* ---- bounded waits -------------------------------------------------------- */

/** A condition to wait for; ctx is the caller's. Must not block for long. */
typedef bool (*et_test_pred)(void *ctx);

/**
 * Check pred until it is true or timeout_ms has passed (monotonic clock),
 * sleeping a little between checks (10 ms at first, growing to 100 ms).
 * Returns whether it became true. For waits whose timing out is itself an
 * expected outcome.
 */
bool et_test_poll_until(et_test_pred pred, void *ctx, int timeout_ms);

/**
 * Wait for an event that must happen: like et_test_poll_until(), but when
 * the deadline passes it fails the running test with a message naming the
 * predicate, the time waited and the caller's file and line.
 */
#define et_test_wait_until(pred, ctx, timeout_ms) \
    et_test_wait_until_at((pred), (ctx), (timeout_ms), #pred, __FILE__, __LINE__)

void et_test_wait_until_at(et_test_pred pred, void *ctx, int timeout_ms,
                           const char *what, const char *file, int line);

/** Milliseconds on the monotonic clock, for tests that measure their own deadlines. */
long long et_test_now_ms(void);

#endif
