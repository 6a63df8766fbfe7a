/* seqclient: sequential requests on one connection, timed per request (issue 18, 1x1).
 *
 * One small C client for both protocols, so that a SPDY server and an HTTP/1.1 server
 * are compared with a load generator of the same (small) cost. Built and driven by
 * benchmarks/latency_1x1.py, which pre-encodes every request (SPDY's header compression
 * is one zlib stream: the SYN_STREAMs are encoded in order beforehand by spdyasgi's
 * engine). libc only, cleartext only.
 *
 *   seqclient [-w WARMUP] [-t TIMEOUT_MS] [-r READ_MAX] [-s] PORT FILE
 *
 * FILE (little-endian u32s): mode (1 SPDY, 2 HTTP/1.1), request count, preface length,
 * preface bytes, then per request: stream id (0 for HTTP/1.1), length, request bytes.
 *
 * Per request: one write, then reads until the response is complete -- SPDY: the frame
 * carrying FIN for that stream id (SYN_REPLY, HEADERS or DATA), frames parsed as a byte
 * stream so a header may span reads; HTTP/1.1: the head and Content-Length bytes of body.
 * Reads block with SO_RCVTIMEO (one system call per read, never a hang; poll() would
 * add a second). No WINDOW_UPDATE is ever sent: a SPDY response must fit the windows
 * the preface announces (hello bodies do). The first WARMUP requests are not timed.
 * With -s, "warm" is printed after the warm-up and one byte is read from stdin before
 * the timed requests, and after the result line stdin is read to EOF before the
 * connection closes: the caller reads the server's CPU time at exactly those points.
 * -r caps each read (tests: -r 1 splits every frame at every byte).
 *
 * Output: one JSON line {"count", "p50_us", "p90_us", "p99_us", "mean_us", "body_bytes"}.
 * Errors (connection closed, RST_STREAM, GOAWAY, malformed frame, HTTP status not 2xx,
 * timeout) print one line "seqclient: ..." on stderr and exit 1 (2: usage or input file).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define BUF_SIZE 65536

static int fd = -1;
static unsigned char buf[BUF_SIZE];
static size_t buf_pos, buf_len;  /* unparsed bytes are buf[buf_pos:buf_len] */
static size_t read_max = BUF_SIZE;
static long done_requests;       /* responses completed so far (warm-up included) */

static void fail(int code, const char *fmt, ...) {
    va_list ap;
    fputs("seqclient: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static void send_all(const unsigned char *data, size_t len) {
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                fail(1, "timeout: send blocked (after %ld responses)", done_requests);
            fail(1, "send failed after %ld responses: %s", done_requests, strerror(errno));
        }
        data += n;
        len -= (size_t)n;
    }
}

/* Refill buf (all of it was parsed) with the next read; fail on close or timeout. */
static void fill(void) {
    for (;;) {
        ssize_t n = recv(fd, buf, read_max, 0);
        if (n > 0) {
            buf_pos = 0;
            buf_len = (size_t)n;
            return;
        }
        if (n == 0)
            fail(1, "server closed the connection after %ld responses", done_requests);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            fail(1, "timeout: no response bytes (after %ld responses)", done_requests);
        fail(1, "recv failed after %ld responses: %s", done_requests, strerror(errno));
    }
}

/* ------------------------------------------------------------------------ SPDY */

/* The frame being parsed persists across reads and across requests. */
static unsigned char hdr[8];
static size_t hdr_have;           /* bytes of hdr received */
static size_t payload_left;       /* payload bytes of the current frame still to come */
static unsigned char head[8];     /* first payload bytes of a control frame */
static size_t head_have;

/* The current frame is complete: act on it. Returns 1 when it ends `stream`'s response. */
static int spdy_frame_done(uint32_t stream, uint64_t *body) {
    uint32_t length = (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
    int fin = hdr[4] & 1;
    if (!(hdr[0] & 0x80)) {  /* DATA */
        uint32_t sid = be32(hdr) & 0x7fffffff;
        if (sid != stream)
            fail(1, "malformed: DATA for stream %u while waiting for stream %u", sid, stream);
        *body += length;
        return fin;
    }
    unsigned version = ((unsigned)(hdr[0] & 0x7f) << 8) | hdr[1];
    unsigned type = (unsigned)hdr[2] << 8 | hdr[3];
    if (version != 3)
        fail(1, "malformed: control frame of SPDY version %u", version);
    switch (type) {
    case 2:  /* SYN_REPLY */
    case 8:  /* HEADERS */
        if (length < 4)
            fail(1, "malformed: %s with length %u", type == 2 ? "SYN_REPLY" : "HEADERS", length);
        if ((be32(head) & 0x7fffffff) != stream)
            fail(1, "malformed: %s for stream %u while waiting for stream %u",
                 type == 2 ? "SYN_REPLY" : "HEADERS", be32(head) & 0x7fffffff, stream);
        return fin;
    case 3:  /* RST_STREAM */
        if (length != 8) fail(1, "malformed: RST_STREAM with length %u", length);
        fail(1, "RST_STREAM on stream %u, status %u (after %ld responses)",
             be32(head) & 0x7fffffff, be32(head + 4), done_requests);
        return 0;
    case 7:  /* GOAWAY */
        if (length != 8) fail(1, "malformed: GOAWAY with length %u", length);
        fail(1, "GOAWAY, last stream %u, status %u (after %ld responses)",
             be32(head) & 0x7fffffff, be32(head + 4), done_requests);
        return 0;
    case 6:  /* PING: echo the server's (even ids); ours (odd) are never sent */
        if (length != 4) fail(1, "malformed: PING with length %u", length);
        if (!(be32(head) & 1)) {
            unsigned char pong[12];
            memcpy(pong, hdr, 8);
            memcpy(pong + 8, head, 4);
            send_all(pong, sizeof pong);
        }
        return 0;
    case 1:  /* SYN_STREAM */
        fail(1, "unexpected SYN_STREAM from the server (push is not supported)");
        return 0;
    default:  /* SETTINGS, WINDOW_UPDATE, NOOP, CREDENTIAL, unknown: nothing to do */
        return 0;
    }
}

/* Read frames until the one carrying FIN for `stream`; body bytes of DATA into *body. */
static void spdy_response(uint32_t stream, uint64_t *body) {
    for (;;) {
        while (buf_pos < buf_len) {
            if (hdr_have < 8) {
                size_t take = 8 - hdr_have;
                if (take > buf_len - buf_pos) take = buf_len - buf_pos;
                memcpy(hdr + hdr_have, buf + buf_pos, take);
                hdr_have += take;
                buf_pos += take;
                if (hdr_have < 8) break;
                payload_left = (size_t)hdr[5] << 16 | (size_t)hdr[6] << 8 | hdr[7];
                head_have = 0;
            }
            size_t take = payload_left < buf_len - buf_pos ? payload_left : buf_len - buf_pos;
            if ((hdr[0] & 0x80) && head_have < sizeof head) {
                size_t keep = sizeof head - head_have;
                if (keep > take) keep = take;
                memcpy(head + head_have, buf + buf_pos, keep);
                head_have += keep;
            }
            buf_pos += take;
            payload_left -= take;
            if (payload_left) break;
            hdr_have = 0;
            if (spdy_frame_done(stream, body)) return;
        }
        fill();
    }
}

/* ------------------------------------------------------------------------ HTTP/1.1 */

/* Read one response: head (must fit the buffer) and Content-Length bytes of body. */
static void http_response(uint64_t *body) {
    unsigned char *end;
    for (;;) {
        end = memmem(buf + buf_pos, buf_len - buf_pos, "\r\n\r\n", 4);
        if (end) break;
        if (buf_pos == buf_len) {
            fill();
            continue;
        }
        /* partial head: move it to the front and read more behind it */
        size_t have = buf_len - buf_pos;
        if (have >= BUF_SIZE) fail(1, "malformed: response head larger than %d bytes", BUF_SIZE);
        memmove(buf, buf + buf_pos, have);
        buf_pos = 0;
        buf_len = have;
        size_t room = BUF_SIZE - have < read_max ? BUF_SIZE - have : read_max;
        ssize_t n;
        do n = recv(fd, buf + have, room, 0); while (n < 0 && errno == EINTR);
        if (n == 0)
            fail(1, "server closed the connection after %ld responses", done_requests);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                fail(1, "timeout: response head incomplete (after %ld responses)",
                     done_requests);
            fail(1, "recv failed after %ld responses: %s", done_requests, strerror(errno));
        }
        buf_len += (size_t)n;
    }
    const char *h = (const char *)buf + buf_pos;
    size_t head_len = (size_t)(end - (buf + buf_pos));
    if (head_len < 12 || memcmp(h, "HTTP/1.", 7) != 0)
        fail(1, "malformed: response does not start with an HTTP/1.x status line");
    int status = atoi(h + 9);
    if (status < 200 || status >= 300) fail(1, "HTTP status %d (after %ld responses)",
                                            status, done_requests);
    long long length = -1;
    for (const char *line = memchr(h, '\n', head_len); line && line < h + head_len;
         line = memchr(line, '\n', (size_t)(h + head_len - line))) {
        line++;
        if (strncasecmp(line, "content-length:", 15) == 0)
            length = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "transfer-encoding:", 18) == 0)
            fail(1, "chunked (Transfer-Encoding) responses are not supported");
    }
    if (length < 0) fail(1, "malformed: response without Content-Length");
    *body += (uint64_t)length;
    buf_pos += head_len + 4;
    uint64_t left = (uint64_t)length;
    for (;;) {
        size_t take = left < buf_len - buf_pos ? (size_t)left : buf_len - buf_pos;
        buf_pos += take;
        left -= take;
        if (!left) return;
        fill();
    }
}

/* ------------------------------------------------------------------------ main */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void wait_stdin(void) {
    char c;
    while (read(0, &c, 1) < 0 && errno == EINTR) {}
}

static unsigned char *load(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) fail(2, "cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) fail(2, "cannot seek %s", path);
    long n = ftell(f);
    rewind(f);
    unsigned char *data = malloc(n > 0 ? (size_t)n : 1);
    if (!data || n < 0 || fread(data, 1, (size_t)n, f) != (size_t)n)
        fail(2, "cannot read %s", path);
    fclose(f);
    *size = (size_t)n;
    return data;
}

int main(int argc, char **argv) {
    long warmup = 0, timeout_ms = 10000;
    int sync = 0, opt;
    while ((opt = getopt(argc, argv, "w:t:r:s")) != -1) {
        switch (opt) {
        case 'w': warmup = atol(optarg); break;
        case 't': timeout_ms = atol(optarg); break;
        case 'r': read_max = (size_t)atol(optarg); break;
        case 's': sync = 1; break;
        default: fail(2, "usage: seqclient [-w WARMUP] [-t TIMEOUT_MS] [-r READ_MAX] [-s] "
                         "PORT FILE");
        }
    }
    if (argc - optind != 2 || read_max < 1 || read_max > BUF_SIZE || timeout_ms < 1)
        fail(2, "usage: seqclient [-w WARMUP] [-t TIMEOUT_MS] [-r READ_MAX 1..%d] [-s] "
                "PORT FILE", BUF_SIZE);
    int port = atoi(argv[optind]);
    size_t size;
    unsigned char *data = load(argv[optind + 1], &size);
    if (size < 12) fail(2, "input file too short");
    uint32_t mode = le32(data), count = le32(data + 4), preface_len = le32(data + 8);
    if ((mode != 1 && mode != 2) || preface_len > size - 12)
        fail(2, "input file: bad header");
    if (warmup < 0 || (uint32_t)warmup >= count)
        fail(2, "need more requests (%u) than warm-up requests (%ld)", count, warmup);
    /* index the requests */
    unsigned char **req = malloc(count * sizeof *req);
    uint32_t *req_len = malloc(count * sizeof *req_len), *req_sid = malloc(count * sizeof *req_sid);
    uint64_t *times = malloc((count - (uint32_t)warmup) * sizeof *times);
    if (!req || !req_len || !req_sid || !times) fail(2, "out of memory");
    size_t at = 12 + preface_len;
    for (uint32_t i = 0; i < count; i++) {
        if (size - at < 8) fail(2, "input file: request %u truncated", i);
        req_sid[i] = le32(data + at);
        req_len[i] = le32(data + at + 4);
        at += 8;
        if (req_len[i] > size - at) fail(2, "input file: request %u truncated", i);
        req[i] = data + at;
        at += req_len[i];
    }

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) fail(1, "socket: %s", strerror(errno));
    int one = 1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        fail(1, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
    if (preface_len) send_all(data + 12, preface_len);

    uint64_t body = 0, timed_body = 0, total = 0;
    for (uint32_t i = 0; i < count; i++) {
        if ((long)i == warmup) {
            if (sync) {
                fputs("warm\n", stdout);
                fflush(stdout);
                wait_stdin();
            }
            body = 0;
        }
        uint64_t start = now_ns();
        send_all(req[i], req_len[i]);
        if (mode == 1) spdy_response(req_sid[i], &body);
        else http_response(&body);
        uint64_t took = now_ns() - start;
        done_requests++;
        if ((long)i >= warmup) times[i - (uint32_t)warmup] = took;
    }
    timed_body = body;
    size_t n = count - (uint32_t)warmup;
    for (size_t i = 0; i < n; i++) total += times[i];
    qsort(times, n, sizeof *times, cmp_u64);
    printf("{\"count\": %zu, \"p50_us\": %.3f, \"p90_us\": %.3f, \"p99_us\": %.3f, "
           "\"mean_us\": %.3f, \"body_bytes\": %llu}\n", n, times[n / 2] / 1e3,
           times[(size_t)(n * 0.9)] / 1e3, times[(size_t)(n * 0.99)] / 1e3,
           (double)total / n / 1e3, (unsigned long long)timed_body);
    fflush(stdout);
    if (sync) {  /* the caller reads the server's CPU time, then closes our stdin */
        char drain[64];
        ssize_t got;
        do got = read(0, drain, sizeof drain); while (got > 0 || (got < 0 && errno == EINTR));
    }
    close(fd);
    return 0;
}
