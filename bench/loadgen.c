/* loadgen: an epoll load generator for the trio_tcp echo benchmarks (bench/run.py compiles it).
 *
 *   loadgen rt    PORT CONNS SIZE SECONDS   round trips: each connection sends SIZE bytes and
 *                                           waits for all SIZE echoed back, then repeats
 *   loadgen bulk  PORT CHUNK SECONDS        one connection streams and reads the echo at once
 *   loadgen cps   PORT SECONDS              connect, echo 64 bytes, close, repeat (serially)
 *   loadgen idle  PORT CONNS                open CONNS connections, echo one line on each,
 *                                           print "ready", hold them until stdin closes
 *
 * Every echoed byte is compared with what was sent. Round-trip messages are SIZE-1 letters
 * and a '\n' (so line-echo servers echo them unchanged); bulk bytes follow a pseudo-random
 * pattern whose period (1048583, a prime) no chunking lines up with, so a lost, duplicated or
 * reordered chunk is caught. Prints one JSON line: ops, bytes, errors, elapsed and this
 * process's CPU seconds (user, sys), from which run.py tells whether the generator was the
 * bottleneck. Connects to 127.0.0.1 only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 1048583u
#define MAX_EVENTS 256

static unsigned char *pattern; /* PERIOD + 1 MiB, so any chunk is one memcpy/memcmp */
static struct sockaddr_in addr;
static long errors;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what) {
    perror(what);
    exit(2);
}

static int connect_one(int blocking) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) fail("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) fail("connect");
    if (!blocking) fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void write_all(int fd, const unsigned char *buf, size_t len) {
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("write");
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void read_exact_verify(int fd, const unsigned char *expect, size_t len) {
    unsigned char buf[65536];
    size_t got = 0;
    while (got < len) {
        size_t want = len - got < sizeof buf ? len - got : sizeof buf;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("read (echo ended early)");
        if (memcmp(buf, expect + got, (size_t)n) != 0) errors++;
        got += (size_t)n;
    }
}

static void make_message(unsigned char *msg, size_t size, unsigned long seq) {
    for (size_t i = 0; i + 1 < size; i++) msg[i] = (unsigned char)('a' + (seq + i) % 26);
    msg[size - 1] = '\n';
}

static void report(long ops, double bytes, double elapsed) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"ops\": %ld, \"bytes\": %.0f, \"errors\": %ld, \"elapsed\": %.6f, "
           "\"cpu_user\": %.6f, \"cpu_sys\": %.6f}\n",
           ops, bytes, errors, elapsed, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

struct rtconn {
    int fd;
    unsigned long seq;
    size_t sent, got;
    unsigned char *msg;
};

static void run_rt(int conns, size_t size, double seconds) {
    int ep = epoll_create1(0);
    struct rtconn *cs = calloc((size_t)conns, sizeof *cs);
    unsigned char *buf = malloc(size);
    long ops = 0;
    for (int i = 0; i < conns; i++) {
        cs[i].fd = connect_one(0);
        cs[i].seq = (unsigned long)i * 7;
        cs[i].msg = malloc(size);
        make_message(cs[i].msg, size, cs[i].seq);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    double start = now(), end = start + seconds;
    for (int i = 0; i < conns; i++) {
        ssize_t n = write(cs[i].fd, cs[i].msg, size);
        cs[i].sent = n > 0 ? (size_t)n : 0;
        if (cs[i].sent < size) { /* rare for one message: finish it blocking-style */
            fcntl(cs[i].fd, F_SETFL, 0);
            write_all(cs[i].fd, cs[i].msg + cs[i].sent, size - cs[i].sent);
            fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
            cs[i].sent = size;
        }
    }
    struct epoll_event events[MAX_EVENTS];
    int stopping = 0, outstanding = conns;
    while (outstanding > 0) {
        int k = epoll_wait(ep, events, MAX_EVENTS, 1000);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) fail("epoll_wait: no echo for 1 s");
        if (!stopping && now() >= end) stopping = 1;
        for (int e = 0; e < k; e++) {
            struct rtconn *c = events[e].data.ptr;
            ssize_t n = read(c->fd, buf, size - c->got);
            if (n < 0 && errno == EAGAIN) continue;
            if (n <= 0) fail("read (echo ended early)");
            if (memcmp(buf, c->msg + c->got, (size_t)n) != 0) errors++;
            c->got += (size_t)n;
            if (c->got < size) continue;
            ops++;
            c->got = 0;
            if (stopping) {
                outstanding--;
                continue;
            }
            make_message(c->msg, size, ++c->seq);
            ssize_t w = write(c->fd, c->msg, size);
            if (w < (ssize_t)size) {
                fcntl(c->fd, F_SETFL, 0);
                write_all(c->fd, c->msg + (w > 0 ? w : 0), size - (size_t)(w > 0 ? w : 0));
                fcntl(c->fd, F_SETFL, O_NONBLOCK);
            }
        }
    }
    double elapsed = now() - start;
    report(ops, (double)ops * (double)size, elapsed);
}

static void run_bulk(size_t chunk, double seconds) {
    int fd = connect_one(0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    unsigned char *buf = malloc(chunk);
    uint64_t sent = 0, got = 0, window = 4u << 20;
    double start = now(), end = start + seconds;
    int writing = 1;
    for (;;) {
        struct epoll_event events[1];
        int k = epoll_wait(ep, events, 1, 1000);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) fail("epoll_wait: no echo for 1 s");
        if (writing && (events[0].events & EPOLLOUT) && sent - got < window) {
            ssize_t n = write(fd, pattern + sent % PERIOD, chunk);
            if (n > 0) sent += (uint64_t)n;
        }
        if (events[0].events & EPOLLIN) {
            ssize_t n = read(fd, buf, chunk);
            if (n == 0) fail("read (echo ended early)");
            if (n > 0) {
                if (memcmp(buf, pattern + got % PERIOD, (size_t)n) != 0) errors++;
                got += (uint64_t)n;
            }
        }
        if (writing && now() >= end) {
            writing = 0;
            struct epoll_event rd = {.events = EPOLLIN, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &rd);
        }
        if (!writing && got == sent) break;
        if (writing && sent - got >= window) { /* stop asking for EPOLLOUT until echo drains */
            struct epoll_event rd = {.events = EPOLLIN, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &rd);
            while (sent - got >= window / 2) {
                ssize_t n = read(fd, buf, chunk);
                if (n < 0 && errno == EAGAIN) {
                    epoll_wait(ep, events, 1, 1000);
                    continue;
                }
                if (n <= 0) fail("read (echo ended early)");
                if (memcmp(buf, pattern + got % PERIOD, (size_t)n) != 0) errors++;
                got += (uint64_t)n;
            }
            struct epoll_event rw = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &rw);
        }
    }
    report(1, (double)got, now() - start);
}

static void run_cps(double seconds) {
    /* One connection at a time, blocking: the C side of connect/echo/close costs a few
     * microseconds, far less than the Python server's accept + task + close, so one loop is
     * enough to keep the server's core busy (run.py checks that from the CPU figures). */
    unsigned char msg[64];
    make_message(msg, sizeof msg, 3);
    long ops = 0;
    double start = now(), end = start + seconds;
    while (now() < end) {
        int fd = connect_one(1);
        write_all(fd, msg, sizeof msg);
        read_exact_verify(fd, msg, sizeof msg);
        close(fd);
        ops++;
    }
    report(ops, (double)ops * sizeof msg, now() - start);
}

static void run_idle(int conns) {
    int *fds = calloc((size_t)conns, sizeof *fds);
    unsigned char msg[16];
    make_message(msg, sizeof msg, 5);
    double start = now();
    for (int i = 0; i < conns; i++) {
        fds[i] = connect_one(1);
        write_all(fds[i], msg, sizeof msg);
        read_exact_verify(fds[i], msg, sizeof msg); /* the server's handler is running */
    }
    report(conns, (double)conns * sizeof msg, now() - start);
    printf("ready\n");
    fflush(stdout);
    char line[16];
    while (fgets(line, sizeof line, stdin)) {
    }
    for (int i = 0; i < conns; i++) close(fds[i]);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: loadgen rt|bulk|cps|idle PORT ...\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[2]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pattern = malloc(PERIOD + (1u << 20));
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < PERIOD; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        pattern[i] = (unsigned char)x;
    }
    memcpy(pattern + PERIOD, pattern, 1u << 20);
    if (!strcmp(argv[1], "rt") && argc == 6)
        run_rt(atoi(argv[3]), (size_t)atol(argv[4]), atof(argv[5]));
    else if (!strcmp(argv[1], "bulk") && argc == 5)
        run_bulk((size_t)atol(argv[3]), atof(argv[4]));
    else if (!strcmp(argv[1], "cps") && argc == 4)
        run_cps(atof(argv[3]));
    else if (!strcmp(argv[1], "idle") && argc == 4)
        run_idle(atoi(argv[3]));
    else {
        fprintf(stderr, "loadgen: bad arguments\n");
        return 2;
    }
    return errors ? 1 : 0;
}
