/* wsload: a compiled WebSocket load generator for benchmarks/ws_bench.py.
 *
 *   wsload HOST PORT CONNS INFLIGHT WARMUP_S SECONDS SIZE
 *
 * Opens CONNS connections, does the opening handshake on each (GET /ws, a fixed key: the
 * server's 101 is required, its accept key is not checked), then keeps INFLIGHT masked
 * text messages of SIZE bytes (< 126) in flight on each connection: every echoed message
 * read is answered by one more.  Every byte echoed is compared with the expected stream
 * (the same unmasked frame over and over); a difference counts as an error.
 * Prints "START" after WARMUP_S seconds, then "STOP <messages> <seconds> <errors>" after
 * SECONDS more, and exits.  Written in C so that the load costs far less CPU than any
 * server measured (nothing packaged speaks WebSocket at this rate).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    size_t pos;        /* position in the expected echo stream (mod echo frame length) */
    size_t unsent;     /* bytes of new frames not written yet */
} conn_t;

static unsigned char out_frame[256], echo_frame[256], sendbuf[256 * 64];
static size_t out_len, echo_len;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(const char *host, int port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "bad host\n"); exit(2); }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); exit(2); }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", host, port);
    if (write(fd, req, n) != n) { perror("write"); exit(2); }
    char head[4096];
    size_t got = 0;
    while (got < sizeof head - 1) {
        ssize_t r = read(fd, head + got, 1);  /* byte by byte: nothing past the head */
        if (r <= 0) { fprintf(stderr, "handshake: connection closed\n"); exit(2); }
        got += r;
        head[got] = 0;
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0) break;
    }
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) { fprintf(stderr, "handshake: %s\n", head); exit(2); }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static long long errors = 0;

static void flush_out(conn_t *c) {
    while (c->unsent) {
        size_t chunk = c->unsent;
        if (chunk > sizeof sendbuf) chunk = sizeof sendbuf - (sizeof sendbuf % out_len);
        ssize_t w = write(c->fd, sendbuf, chunk);
        if (w < 0) { if (errno != EAGAIN) { errors++; c->unsent = 0; } return; }
        /* Partial frames never happen with these sizes on loopback; count them as errors. */
        if ((size_t)w % out_len) errors++;
        c->unsent -= (size_t)w;
    }
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: wsload HOST PORT CONNS INFLIGHT WARMUP_S SECONDS SIZE\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), nconns = atoi(argv[3]), inflight = atoi(argv[4]);
    double warmup = atof(argv[5]), seconds = atof(argv[6]);
    int size = atoi(argv[7]);
    if (size < 1 || size > 125 || inflight < 1 || inflight > 64 || nconns < 1) return 2;
    unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    out_frame[0] = 0x81;
    out_frame[1] = 0x80 | size;
    memcpy(out_frame + 2, mask, 4);
    echo_frame[0] = 0x81;
    echo_frame[1] = size;
    for (int i = 0; i < size; i++) {
        unsigned char ch = 'a' + (i % 26);
        out_frame[6 + i] = ch ^ mask[i % 4];
        echo_frame[2 + i] = ch;
    }
    out_len = 6 + size;
    echo_len = 2 + size;
    for (size_t i = 0; i + out_len <= sizeof sendbuf; i += out_len) memcpy(sendbuf + i, out_frame, out_len);

    conn_t *conns = calloc(nconns, sizeof *conns);
    int ep = epoll_create1(0);
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = dial(host, port);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
        conns[i].unsent = (size_t)inflight * out_len;
        flush_out(&conns[i]);
    }
    double t0 = now(), t_start = -1;
    long long messages = 0, at_start = 0;
    static unsigned char buf[1 << 16];
    struct epoll_event events[256];
    for (;;) {
        double t = now();
        if (t_start < 0 && t - t0 >= warmup) {
            t_start = t;
            at_start = messages;
            printf("START\n");
            fflush(stdout);
        }
        if (t_start >= 0 && t - t_start >= seconds) break;
        int n = epoll_wait(ep, events, 256, 10);
        for (int k = 0; k < n; k++) {
            conn_t *c = events[k].data.ptr;
            for (;;) {
                ssize_t r = read(c->fd, buf, sizeof buf);
                if (r == 0) { fprintf(stderr, "server closed a connection\n"); return 1; }
                if (r < 0) { if (errno != EAGAIN) { perror("read"); return 1; } break; }
                size_t done = 0;
                for (ssize_t i = 0; i < r; i++) {
                    if (buf[i] != echo_frame[c->pos]) errors++;
                    if (++c->pos == echo_len) { c->pos = 0; done++; }
                }
                messages += done;
                c->unsent += done * out_len;
                flush_out(c);
                if ((size_t)r < sizeof buf) break;
            }
        }
    }
    printf("STOP %lld %.6f %lld\n", messages - at_start, now() - t_start, errors);
    fflush(stdout);
    return errors ? 1 : 0;
}
