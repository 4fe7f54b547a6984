/*
 * progress.c — progress bars on stderr (bytes, rate, ETA), drawn only when
 * stderr is a terminal and at most ten times a second.
 *
 * Two shapes, one module: a single line redrawn with '\r' (convert; ppl
 * counts tokens instead of bytes: cli_progress_init_count), or a
 * block of lines — one per item in flight plus a total line — redrawn in
 * place with ANSI cursor movement (pull --jobs N).
 *
 * Invariants: nothing is written when stderr is not a TTY; every line is cut
 * to the terminal width so the block never wraps (cursor-up counts lines);
 * after a block draw the cursor sits at the end of its last line, and
 * cli_progress_done() ends that line.
 */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int term_cols(void) {
    struct winsize ws;
    if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

/* "[=====>    ]" of `width` cells for done/total */
static void fmt_bar(char *bar, int width, uint64_t done, uint64_t total) {
    double frac = total ? (double)done / (double)total : 1.0;
    int fill = (int)(frac * width);
    bar[0] = '[';
    for (int i = 0; i < width; i++) bar[1 + i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width + 1] = ']';
    bar[width + 2] = 0;
}

static double pct(uint64_t done, uint64_t total) { return total ? 100.0 * (double)done / (double)total : 100.0; }

void cli_progress_init(cli_progress *p, const char *label) {
    memset(p, 0, sizeof *p);
    p->enabled = isatty(2);
    p->start = now_s();
    p->label = label;
}

void cli_progress_init_count(cli_progress *p, const char *label, const char *unit) {
    cli_progress_init(p, label);
    p->unit = unit;
}

static const char *fmt_secs(double s, char *buf, size_t len);

void cli_progress_cb(void *ctx, uint64_t done, uint64_t total, const char *what) {
    cli_progress *p = ctx;
    (void)what;
    if (!p->enabled) return;
    double t = now_s();
    if (done < total && t - p->last < 0.1) return;
    p->last = t;
    double el = t - p->start, rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    char bar[64], a[32], b[32], r[32], e[32];
    fmt_bar(bar, 30, done, total);
    if (p->unit)
        fprintf(stderr, "\r\033[K%s %s %3.0f%% %llu/%llu %s %.0f %s/s ETA %s", p->label, bar, pct(done, total),
                (unsigned long long)done, (unsigned long long)total, p->unit, rate, p->unit, fmt_secs(eta, e, sizeof e));
    else
        fprintf(stderr, "\r%s %s %3.0f%% %s/%s %s/s ETA %.0fs  ", p->label, bar, pct(done, total),
                cli_human_bytes(done, a, sizeof a), cli_human_bytes(total, b, sizeof b),
                cli_human_bytes((unsigned long long)rate, r, sizeof r), eta);
    fflush(stderr);
    p->drawn = true;
}

/* Rate of one row since its name was first seen (0 for the first 0.2 s). */
static double row_rate(cli_progress *p, const cli_progress_row *rows, size_t n, size_t k, double t) {
    const char *name = rows[k].name;
    int s = -1, free_s = -1;
    for (int i = 0; i < CLI_PROGRESS_SLOTS && s < 0; i++) {
        if (p->slot[i].used && !strncmp(p->slot[i].name, name, sizeof p->slot[i].name - 1)) s = i;
        else if (free_s < 0 && !p->slot[i].used) free_s = i;
    }
    if (s < 0 && free_s < 0) {   /* evict a slot no current row uses */
        for (int i = 0; i < CLI_PROGRESS_SLOTS && free_s < 0; i++) {
            bool in_use = false;
            for (size_t j = 0; j < n && !in_use; j++)
                in_use = !strncmp(p->slot[i].name, rows[j].name, sizeof p->slot[i].name - 1);
            if (!in_use) free_s = i;
        }
        if (free_s < 0) return 0;
    }
    if (s < 0) {
        s = free_s;
        snprintf(p->slot[s].name, sizeof p->slot[s].name, "%s", name);
        p->slot[s].t0 = t;
        p->slot[s].d0 = rows[k].done;
        p->slot[s].used = true;
    }
    double el = t - p->slot[s].t0;
    return el > 0.2 && rows[k].done >= p->slot[s].d0 ? (double)(rows[k].done - p->slot[s].d0) / el : 0;
}

/* "42s", "3m05s", "2h10m" */
static const char *fmt_secs(double s, char *buf, size_t len) {
    unsigned long v = s > 0 && s < 1e9 ? (unsigned long)(s + 0.5) : 0;
    if (v < 60) snprintf(buf, len, "%lus", v);
    else if (v < 3600) snprintf(buf, len, "%lum%02lus", v / 60, v % 60);
    else snprintf(buf, len, "%luh%02lum", v / 3600, v % 3600 / 60);
    return buf;
}

/* Append "head [bar] tail" as one line cut to cols-1 bytes; the bar takes
 * what room is left (at most max_bar cells) and is left out below 5. */
static size_t put_line(char *buf, size_t o, const char *head, const char *tail, uint64_t done, uint64_t total,
                       int max_bar, int cols, bool last) {
    char line[512], bar[64];
    int room = cols - 1 - (int)strlen(head) - (int)strlen(tail) - 4;
    if (room > max_bar) room = max_bar;
    if (room >= 5) fmt_bar(bar, room, done, total);
    else bar[0] = 0;
    snprintf(line, sizeof line, "%s %s%s%s", head, bar, bar[0] ? " " : "", tail);
    size_t n = strlen(line), lim = (size_t)cols - 1;
    if (n > lim) n = lim;
    memcpy(buf + o, "\033[K", 3);
    o += 3;
    memcpy(buf + o, line, n);
    o += n;
    if (last) {
        memcpy(buf + o, "\033[J", 3);
        o += 3;
    } else buf[o++] = '\n';
    return o;
}

void cli_progress_rows(cli_progress *p, const cli_progress_row *rows, size_t n, uint64_t done, uint64_t total,
                       const char *extra, bool force) {
    if (!p->enabled) return;
    double t = now_s();
    if (!force && p->drawn && t - p->last < 0.1) return;
    p->last = t;
    if (!p->have_base) {
        p->have_base = true;
        p->base = done;
        p->start = t;
    }
    int cols = term_cols();
    char *buf = malloc((n + 1) * ((size_t)cols + 8) + 32);
    if (!buf) return;
    size_t o = 0;
    if (p->lines > 1) o += (size_t)snprintf(buf, 32, "\033[%dA", p->lines - 1);
    buf[o++] = '\r';
    int nw = 8;
    for (size_t k = 0; k < n; k++) {
        int l = (int)strlen(rows[k].name);
        if (l > nw) nw = l;
    }
    if (nw > 40) nw = 40;
    char head[64], tail[160], a[32], b[32], r[32];
    for (size_t k = 0; k < n; k++) {
        const char *nm = rows[k].name;
        size_t l = strlen(nm);
        if (l > (size_t)nw) snprintf(head, sizeof head, "  ..%s", nm + l - (size_t)(nw - 2));
        else snprintf(head, sizeof head, "  %-*s", nw, nm);
        double rate = row_rate(p, rows, n, k, t);
        snprintf(tail, sizeof tail, "%3.0f%% %10s/%-10s %10s/s", pct(rows[k].done, rows[k].total),
                 cli_human_bytes(rows[k].done, a, sizeof a), cli_human_bytes(rows[k].total, b, sizeof b),
                 cli_human_bytes((unsigned long long)rate, r, sizeof r));
        o = put_line(buf, o, head, tail, rows[k].done, rows[k].total, 20, cols, false);
    }
    double el = t - p->start;
    double rate = el > 0 && done >= p->base ? (double)(done - p->base) / el : 0;
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    char e[32];
    snprintf(tail, sizeof tail, "%3.0f%% %10s/%-10s %10s/s ETA %-6s%s%s", pct(done, total), cli_human_bytes(done, a, sizeof a),
             cli_human_bytes(total, b, sizeof b), cli_human_bytes((unsigned long long)rate, r, sizeof r),
             fmt_secs(eta, e, sizeof e), extra ? "  " : "", extra ? extra : "");
    o = put_line(buf, o, p->label, tail, done, total, 30, cols, true);
    fwrite(buf, 1, o, stderr);
    fflush(stderr);
    free(buf);
    p->lines = (int)n + 1;
    p->drawn = true;
}

void cli_progress_done(cli_progress *p) {
    if (p->enabled && p->drawn) fputc('\n', stderr);
    p->drawn = false;
    p->lines = 0;
}
