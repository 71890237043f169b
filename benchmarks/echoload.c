/* echoload: the compiled echo load generator of benchmarks/run.py.
 *
 *   echoload --port P --mode pingpong|pipelined|stream|connect|idle [--host 127.0.0.1]
 *            [--conns 100] [--size 64] [--inflight 16] [--chunk 65536] [--window 262144]
 *            [--warmup 1] [--seconds 3]
 *
 * One thread, epoll, non-blocking sockets.  Every echoed byte is compared with the byte
 * sent at the same position of its connection's stream (memcmp against a pattern, never
 * just a length): a lost, doubled, reordered or altered byte counts as an error.
 *
 *   pingpong   --conns connections, each with one --size-byte message in flight
 *   pipelined  --conns connections, each with --inflight messages in flight
 *   stream     --conns connections writing --chunk-byte blocks, at most --window bytes not
 *              yet echoed per connection (the figure is bytes)
 *   connect    --conns at a time, each: connect, send one message, read its echo,
 *              shutdown(SHUT_WR), wait for the server's close, close; again (connections)
 *   idle       open --conns connections, each echoes one byte; print "IDLE <n>", wait for
 *              a line on stdin, close them all
 *
 * The messages of a connection follow a pattern of 251 different messages (the stream
 * mode: a byte pattern of prime period 65 537), each connection starting at its own place.
 * After --warmup seconds it prints "START", after --seconds more "STOP" (the caller samples
 * the server's CPU time at both lines), then stops sending, waits (10 s at most) for every
 * byte still in flight to be echoed, and prints one JSON line: messages (round trips, bytes
 * or connections, counted between START and STOP), seconds, p50_us / p99_us (round-trip
 * latency of the messages completed in the window), errors, first_error, checked_bytes.
 * Exit status 0 even with errors (they are in the JSON); 2 on bad arguments or when it
 * cannot connect at all.  Written in C so that the load costs far less CPU than the Python
 * servers measured: they, not the load generator, saturate their core.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { PINGPONG, PIPELINED, STREAM, CONNECT, IDLE };
enum { C_CONNECTING, C_RUNNING, C_CLOSING, C_DONE };

#define NMSGS 251
#define STREAM_PERIOD 65537
#define MAX_INFLIGHT 256
#define HIST_US (1 << 20) /* latency histogram: 1 us buckets up to ~1 s, then one more */

typedef struct {
    int fd, state, id;
    uint64_t base;            /* where this connection starts in the pattern */
    uint64_t sent, received;  /* stream positions (bytes) */
    uint64_t target;          /* send up to here */
    double sent_at[MAX_INFLIGHT];
    int want_out;
} conn_t;

static int mode, nconns = 100, size = 64, inflight = 16, chunk = 65536, window = 262144;
static double warmup = 1.0, seconds = 3.0;
static const char *host = "127.0.0.1";
static int port = 0;
static struct sockaddr_in server;

static unsigned char *pattern; /* two periods back to back: any slice up to a period */
static uint64_t period;
static int ep;
static long long errors = 0;
static unsigned long long checked_bytes = 0; /* every byte compared */
static char first_error[200] = "";
static uint32_t hist[HIST_US + 1];
static int measuring = 0; /* 1 between START and STOP */
static int sending = 1;   /* 0 once STOP: drain only */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void error(const char *fmt, ...) {
    errors++;
    if (!first_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(first_error, sizeof first_error, fmt, ap);
        va_end(ap);
    }
}

static void usage(void) {
    fprintf(stderr, "usage: echoload --port P --mode pingpong|pipelined|stream|connect|idle "
                    "[--host H] [--conns N] [--size S] [--inflight K] [--chunk C] "
                    "[--window W] [--warmup S] [--seconds S]\n");
    exit(2);
}

static void make_pattern(void) {
    if (mode == STREAM) {
        period = STREAM_PERIOD;
        pattern = malloc(2 * period);
        for (uint64_t i = 0; i < period; i++) pattern[i] = (unsigned char)((i * 7 + (i >> 8) * 13) & 0xFF);
    } else {
        /* Message k: its number in decimal, zero-padded to --size (its last --size digits),
         * so that two different messages of the set always differ. */
        period = (uint64_t)NMSGS * size;
        pattern = malloc(2 * period);
        for (int k = 0; k < NMSGS; k++) {
            unsigned char *m = pattern + (uint64_t)k * size;
            int v = k;
            for (int j = size - 1; j >= 0; j--) { m[j] = (unsigned char)('0' + v % 10); v /= 10; }
        }
    }
    memcpy(pattern + period, pattern, period);
}

static void set_events(conn_t *c, int out) {
    if (c->want_out == out) return;
    c->want_out = out;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int open_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Starts a non-blocking connect; the connection is in C_CONNECTING until writable. */
static int start_connect(conn_t *c) {
    c->fd = open_socket();
    if (c->fd < 0) { error("socket: %s", strerror(errno)); return -1; }
    c->state = C_CONNECTING;
    c->sent = c->received = c->target = 0;
    c->sent_at[0] = now(); /* the latency of a cycle counts its connect */
    c->want_out = 1;
    if (connect(c->fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
        error("connect: %s", strerror(errno));
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

/* A blocking connect for the connections that stay open (pingpong, pipelined, stream,
 * idle): made before the clock starts. */
static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0) { close(fd); return -1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static uint64_t msg_len(void) { return mode == STREAM ? (uint64_t)chunk : (uint64_t)size; }

/* Writes the connection's stream from `sent` up to `target`. */
static void pump(conn_t *c) {
    double t = 0;
    while (c->sent < c->target) {
        uint64_t off = (c->base + c->sent) % period;
        uint64_t n = c->target - c->sent;
        if (n > period) n = period;
        if (mode != STREAM && mode != CONNECT) {
            /* Message boundaries: stamp each message as its first byte goes out. */
            uint64_t first = (c->sent + size - 1) / size, last = (c->sent + n + size - 1) / size;
            if (last > first) {
                if (!t) t = now();
                for (uint64_t k = first; k < last; k++) c->sent_at[k % inflight] = t;
            }
        }
        ssize_t w = write(c->fd, pattern + off, n);
        if (w < 0) {
            if (errno == EAGAIN) { set_events(c, 1); return; }
            error("write: %s", strerror(errno));
            c->target = c->sent;
            return;
        }
        c->sent += (uint64_t)w;
    }
    set_events(c, 0);
}

static long long done_messages = 0; /* round trips, bytes or connections, all time */

static void record_latency(double dt) {
    if (!measuring) return;
    long us = (long)(dt * 1e6);
    hist[us < 0 ? 0 : us > HIST_US ? HIST_US : us]++;
}

/* Checks `n` echoed bytes; returns the number of whole messages they completed. */
static uint64_t check(conn_t *c, const unsigned char *buf, size_t n) {
    if (c->received + n > c->sent) {
        error("connection %d: %llu bytes echoed, %llu sent", c->id,
              (unsigned long long)(c->received + n), (unsigned long long)c->sent);
        n = c->sent - c->received;
    }
    size_t done = 0;
    while (done < n) {
        uint64_t off = (c->base + c->received + done) % period;
        size_t piece = n - done;
        if (piece > period) piece = period;
        if (memcmp(buf + done, pattern + off, piece) != 0)
            error("connection %d: echoed bytes differ from those sent at byte %llu", c->id,
                  (unsigned long long)(c->received + done));
        done += piece;
    }
    checked_bytes += n;
    uint64_t before = c->received / msg_len();
    c->received += n;
    return c->received / msg_len() - before;
}

static void finish_connect_cycle(conn_t *c);

static void on_readable(conn_t *c) {
    static unsigned char buf[1 << 18];
    for (;;) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r == 0) {
            if (c->state == C_CLOSING) { finish_connect_cycle(c); return; }
            error("connection %d closed by the server with %llu bytes unechoed", c->id,
                      (unsigned long long)(c->sent - c->received));
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->state = C_DONE;
            return;
        }
        if (r < 0) {
            if (errno == EAGAIN) return;
            error("read: %s", strerror(errno));
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->state = C_DONE;
            if (mode == CONNECT && sending) start_connect(c);
            return;
        }
        if (c->state == C_CLOSING) { error("connection %d: bytes after the echo", c->id); continue; }
        uint64_t completed = check(c, buf, (size_t)r);
        if (mode == PINGPONG || mode == PIPELINED) {
            if (completed) {
                double t = now();
                uint64_t last = c->received / size;
                for (uint64_t k = last - completed; k < last; k++)
                    record_latency(t - c->sent_at[k % inflight]);
                done_messages += (long long)completed;
                if (sending) c->target = (last + inflight) * (uint64_t)size;
                pump(c);
            }
        } else if (mode == STREAM) {
            done_messages += r;
            if (sending) {
                /* Whole blocks only, never more than the window unechoed. */
                while (c->target + chunk - c->received <= (uint64_t)window) c->target += chunk;
                pump(c);
            }
        } else if (mode == CONNECT) {
            if (c->received == c->sent) {
                record_latency(now() - c->sent_at[0]);
                shutdown(c->fd, SHUT_WR);
                c->state = C_CLOSING;
            }
        }
        if ((size_t)r < sizeof buf) return;
    }
}

static void finish_connect_cycle(conn_t *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = C_DONE;
    done_messages++;
    if (sending) {
        c->base = (c->base + size) % period; /* the next message of the set */
        start_connect(c);
    }
}

static void on_writable(conn_t *c) {
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            error("connect: %s", strerror(err));
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->state = C_DONE;
            if (sending) start_connect(c);
            return;
        }
        c->state = C_RUNNING;
        c->target = (uint64_t)size;
    }
    pump(c);
}

static int in_flight(conn_t *conns) {
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        if (c->fd >= 0 && (c->received < c->sent || c->sent < c->target || c->state != C_RUNNING))
            return 1;
    }
    return 0;
}

static void run_idle(conn_t *conns) {
    int opened = 0;
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        c->id = i;
        c->fd = dial();
        if (c->fd < 0) { error("connect: %s", strerror(errno)); if (errors > 50) break; continue; }
        /* Blocking round trip of one byte: the server has set the connection up. */
        int fl = fcntl(c->fd, F_GETFL);
        fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
        unsigned char b = 'i', r = 0;
        if (write(c->fd, &b, 1) != 1 || read(c->fd, &r, 1) != 1 || r != b) {
            error("idle connection %d: the byte was not echoed", i);
            close(c->fd);
            c->fd = -1;
            continue;
        }
        opened++;
    }
    printf("IDLE %d\n", opened);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) { /* EOF: close as well */ }
    for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0) close(conns[i].fd);
    printf("{\"mode\": \"idle\", \"messages\": %d, \"seconds\": 0, \"p50_us\": null, "
           "\"p99_us\": null, \"errors\": %lld, \"first_error\": \"%s\", \"checked_bytes\": %d}\n",
           opened, errors, first_error, opened);
}

static double percentile(double p, long long total) {
    long long want = (long long)(p * total), seen = 0;
    for (long i = 0; i <= HIST_US; i++) {
        seen += hist[i];
        if (seen > want) return (double)i + 0.5;
    }
    return (double)HIST_US;
}

int main(int argc, char **argv) {
    static struct option opts[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"mode", 1, 0, 'm'}, {"conns", 1, 0, 'c'},
        {"size", 1, 0, 's'}, {"inflight", 1, 0, 'i'}, {"chunk", 1, 0, 'k'},
        {"window", 1, 0, 'w'}, {"warmup", 1, 0, 'u'}, {"seconds", 1, 0, 't'}, {0, 0, 0, 0}};
    const char *mode_name = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'm': mode_name = optarg; break;
        case 'c': nconns = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'i': inflight = atoi(optarg); break;
        case 'k': chunk = atoi(optarg); break;
        case 'w': window = atoi(optarg); break;
        case 'u': warmup = atof(optarg); break;
        case 't': seconds = atof(optarg); break;
        default: usage();
        }
    }
    if (!mode_name || port <= 0 || port > 65535) usage();
    if (!strcmp(mode_name, "pingpong")) { mode = PINGPONG; inflight = 1; }
    else if (!strcmp(mode_name, "pipelined")) mode = PIPELINED;
    else if (!strcmp(mode_name, "stream")) mode = STREAM;
    else if (!strcmp(mode_name, "connect")) mode = CONNECT;
    else if (!strcmp(mode_name, "idle")) mode = IDLE;
    else usage();
    if (nconns < 1 || size < 1 || size > 65536 || inflight < 1 || inflight > MAX_INFLIGHT ||
        chunk < 1 || chunk >= STREAM_PERIOD || window < chunk || warmup < 0 || seconds <= 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) { fprintf(stderr, "bad host %s\n", host); return 2; }
    make_pattern();
    ep = epoll_create1(0);
    conn_t *conns = calloc(nconns, sizeof *conns);
    for (int i = 0; i < nconns; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
        /* Each connection starts at its own message (or byte) of the pattern. */
        conns[i].base = (mode == STREAM ? (uint64_t)i * 4099 : (uint64_t)(i % NMSGS) * size) % period;
    }
    if (mode == IDLE) { run_idle(conns); return 0; }

    for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        if (mode == CONNECT) { start_connect(c); continue; }
        c->fd = dial();
        if (c->fd < 0) { fprintf(stderr, "echoload: connect: %s\n", strerror(errno)); return 2; }
        c->state = C_RUNNING;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        c->target = mode == STREAM ? (uint64_t)(window / chunk) * chunk : (uint64_t)inflight * size;
        pump(c);
    }
    struct epoll_event events[512];
    double t0 = now(), t_start = -1, t_stop = -1, drain_until = 0;
    long long at_start = 0, at_stop = 0;
    for (;;) {
        double t = now();
        if (t_start < 0 && t - t0 >= warmup) {
            t_start = t;
            at_start = done_messages;
            measuring = 1;
            printf("START\n");
            fflush(stdout);
        }
        if (t_start >= 0 && t_stop < 0 && t - t_start >= seconds) {
            t_stop = t;
            at_stop = done_messages;
            measuring = 0;
            sending = 0;
            printf("STOP\n");
            fflush(stdout);
            drain_until = t + 10.0;
            for (int i = 0; i < nconns; i++) conns[i].target = conns[i].sent; /* no more */
        }
        if (t_stop >= 0) {
            if (!in_flight(conns)) break;
            if (t > drain_until) { error("bytes still unechoed 10 s after the end"); break; }
        }
        int n = epoll_wait(ep, events, 512, 5);
        for (int k = 0; k < n; k++) {
            conn_t *c = events[k].data.ptr;
            if (c->fd < 0) continue;
            int fd = c->fd, state = c->state;
            if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
            /* Not if on_readable closed it and started another (connect mode). */
            if (c->fd == fd && c->state == state && (events[k].events & EPOLLOUT)) on_writable(c);
        }
    }
    long long total = 0;
    for (long i = 0; i <= HIST_US; i++) total += hist[i];
    for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0) close(conns[i].fd);
    /* first_error holds no quotes or backslashes (strerror texts and our own). */
    printf("{\"mode\": \"%s\", \"messages\": %lld, \"seconds\": %.6f, ", mode_name,
           at_stop - at_start, t_stop - t_start);
    if (total) printf("\"p50_us\": %.1f, \"p99_us\": %.1f, ", percentile(0.5, total), percentile(0.99, total));
    else printf("\"p50_us\": null, \"p99_us\": null, ");
    printf("\"errors\": %lld, \"first_error\": \"%s\", \"checked_bytes\": %llu, \"conns\": %d}\n",
           errors, first_error, checked_bytes, nconns);
    return 0;
}
