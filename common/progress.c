/*
 * Progress display thread.
 *
 * Ownership: the starter owns the monitor; the display thread only reads the
 * caller's counter through count() and writes stderr. stop() sets `stop`
 * under mu, wakes the thread and joins it before freeing, so the thread never
 * outlives the monitor or the caller's context. The thread sleeps between
 * redraws, so a pinned timed worker loses at most a few microseconds twice a
 * second to it.
 *
 * While a line is shown, SIGINT is caught: the handler ends the line with
 * "interrupted" (write(2) only, async-signal-safe), puts back the previous
 * disposition and raises the signal again, so whatever handled it before
 * (temp-file clean-up, the default exit) still runs.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>
#include <time.h>

#include "stagegate/common.h"

struct sg_progress_monitor {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    sg_progress_count_fn count;
    sg_progress_format_fn format;
    void *ctx;
    double t0;
};

static struct sigaction old_int;
static volatile sig_atomic_t int_installed;

static void on_interrupt(int sig)
{
    static const char msg[] = "\n  interrupted\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    sigaction(sig, &old_int, NULL);
    raise(sig);
}

static void catch_interrupt(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    if (!int_installed && sigaction(SIGINT, &sa, &old_int) == 0) {
        if (old_int.sa_handler == SIG_IGN)
            sigaction(SIGINT, &old_int, NULL); /* an ignored SIGINT stays ignored */
        else
            int_installed = 1;
    }
}

static void release_interrupt(void)
{
    if (int_installed) sigaction(SIGINT, &old_int, NULL);
    int_installed = 0;
}

static void draw(sg_progress_monitor *m)
{
    char line[256];
    m->format(m->ctx, m->count(m->ctx), sg_now_seconds() - m->t0, line, sizeof line);
    fprintf(stderr, "\r  %s   ", line);
    fflush(stderr);
}

static void *progress_main(void *arg)
{
    sg_progress_monitor *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&m->cv, &m->mu, &ts);
        if (rc == ETIMEDOUT && !m->stop) draw(m);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

sg_progress_monitor *sg_progress_start(sg_progress_count_fn count, void *ctx,
                                       sg_progress_format_fn format)
{
    sg_progress_monitor *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->count = count;
    m->format = format;
    m->ctx = ctx;
    m->t0 = sg_now_seconds();
    catch_interrupt();
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    if (pthread_create(&m->thread, NULL, progress_main, m) != 0) {
        release_interrupt();
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->cv);
        free(m);
        return NULL;
    }
    return m;
}

void sg_progress_stop(sg_progress_monitor *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    draw(m);
    fputc('\n', stderr);
    release_interrupt();
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}
