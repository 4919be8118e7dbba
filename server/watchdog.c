/*
 * The per-request time limit. libmicrohttpd closes a connection that is idle for the
 * timeout, but a client that sends one header line a second is never idle and never done.
 * The watchdog thread cuts such a connection: every connection is registered when it opens
 * (its socket context), and one that has been receiving a request for longer than the limit
 * without reaching the handler has its socket shut down; libmicrohttpd then sees the end of
 * the stream and closes it as usual. The list and each entry's state are guarded by one
 * mutex; an entry leaves the list (under it) before libmicrohttpd closes the socket, so the
 * watchdog never shuts down a descriptor that was reused.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_internal.h"

struct srv_watch {
    int fd;
    bool handling; /* the request is complete and a handler owns it (or its response) */
    double since;  /* when the current request began arriving */
    struct srv_watch *prev, *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static srv_watch *head;
static bool stopping;
static double limit_s;
static pthread_t thread;
static bool running;

srv_watch *srv_watch_add(int fd)
{
    srv_watch *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->fd = fd;
    w->since = sg_now_seconds();
    pthread_mutex_lock(&mu);
    w->next = head;
    if (head) head->prev = w;
    head = w;
    pthread_mutex_unlock(&mu);
    return w;
}

void srv_watch_remove(srv_watch *w)
{
    if (!w) return;
    pthread_mutex_lock(&mu);
    if (w->prev)
        w->prev->next = w->next;
    else
        head = w->next;
    if (w->next) w->next->prev = w->prev;
    pthread_mutex_unlock(&mu);
    free(w);
}

void srv_watch_handling(srv_watch *w, bool handling)
{
    if (!w) return;
    pthread_mutex_lock(&mu);
    w->handling = handling;
    if (!handling) w->since = sg_now_seconds(); /* the next request on this connection */
    pthread_mutex_unlock(&mu);
}

/* The request line has arrived: time before it, up to a second, was the request's; the rest
   was the connection waiting idle between requests, which --timeout governs. Idle time had
   counted against the next request (a keep-alive client idle for 9 of the 10 s had 1 s left
   to send its request). A client trickling the request line is still cut: it never gets
   here before the limit. */
void srv_watch_request_line(srv_watch *w)
{
    if (!w) return;
    pthread_mutex_lock(&mu);
    const double floor = sg_now_seconds() - 1.0;
    if (!w->handling && w->since < floor) w->since = floor;
    pthread_mutex_unlock(&mu);
}

static void *watch(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        double now = sg_now_seconds();
        for (srv_watch *w = head; w; w = w->next)
            if (!w->handling && now - w->since > limit_s && w->fd >= 0) {
                shutdown(w->fd, SHUT_RDWR);
                w->fd = -1;
            }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&wake, &mu, &ts);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

sg_status srv_watch_start(int request_time_s, sg_err *err)
{
    limit_s = request_time_s;
    stopping = false;
    sg_status st =
        sg_thread_start(&thread, watch, NULL, err, "cannot start the request watchdog thread");
    if (st) return st;
    running = true;
    return SG_OK;
}

void srv_watch_stop(void)
{
    if (!running) return;
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    running = false;
}
