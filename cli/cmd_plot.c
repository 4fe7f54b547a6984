/*
 * cmd_plot.c — `silica plot FILE -o mem.svg`: draw a memory time series
 * (the JSON lines sl_mem_monitor writes: t, rss, peak_rss, kv_bytes,
 * tokens) as a standalone SVG: RSS, peak RSS and KV-cache bytes against
 * time, with axes, ticks, a legend and a <title>/<desc> for screen readers.
 *
 * Invariants: every line must be a JSON object with a numeric "t" and
 * "rss" (others optional, >= 0), t non-decreasing; the first bad line is
 * reported as FILE:LINE with what was expected.  Output is atomic
 * (sl_outfile: temp name, fsync, rename).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "silica/memory.h"

static const char *k_help =
    "usage: silica plot FILE -o OUT.svg [--title TEXT]\n\n"
    "Turn a memory time series (JSON lines written by --monitor: {\"t\", \"rss\",\n"
    "\"peak_rss\", \"kv_bytes\", \"tokens\"}) into an SVG plot of RSS, peak RSS and KV-cache\n"
    "bytes over time.\n\n"
    "options:\n  -o, --output OUT  the SVG to write\n  --title TEXT      plot title (default: FILE)\n"
    "  --help            this text\n";

typedef struct sample {
    double t, rss, peak, kv, tokens;
} sample;

#define MAX_SAMPLES (1u << 22)

static int num_field(const cJSON *o, const char *k, bool required, double *out, const char *path, size_t line,
                     sl_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) {
        *out = -1;
        return required ? sl_errorf(err, SL_EINVAL, "%s:%zu: field '%s' missing (expected a number)", path, line, k) : 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e18)
        return sl_errorf(err, SL_EINVAL, "%s:%zu: field '%s' must be a non-negative number", path, line, k);
    *out = v->valuedouble;
    return 0;
}

static int load(const char *path, sample **out, size_t *n, sl_error *err) {
    *out = NULL;
    *n = 0;
    char *buf;
    size_t len;
    int rc = sl_read_file(path, 512u << 20, &buf, &len, err);
    if (rc) return rc;
    size_t cap = 0, line = 0;
    sample *s = NULL;
    char *p = buf, *end = buf + len;
    while (p < end && !rc) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        char *next = nl ? nl + 1 : end;
        size_t k = 0;
        while (k < l && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k == l) { p = next; continue; }
        cJSON *o = cJSON_ParseWithLength(p, l);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            rc = sl_errorf(err, SL_EINVAL, "%s:%zu: not a JSON object (expected one sample per line)", path, line);
            break;
        }
        sample x;
        if (!(rc = num_field(o, "t", true, &x.t, path, line, err)) &&
            !(rc = num_field(o, "rss", true, &x.rss, path, line, err)) &&
            !(rc = num_field(o, "peak_rss", false, &x.peak, path, line, err)) &&
            !(rc = num_field(o, "kv_bytes", false, &x.kv, path, line, err)))
            rc = num_field(o, "tokens", false, &x.tokens, path, line, err);
        cJSON_Delete(o);
        if (rc) break;
        if (*n && x.t < s[*n - 1].t) {
            rc = sl_errorf(err, SL_EINVAL, "%s:%zu: time %g goes backwards (previous sample %g)", path, line, x.t,
                           s[*n - 1].t);
            break;
        }
        if (*n == MAX_SAMPLES) {
            rc = sl_errorf(err, SL_EINVAL, "%s:%zu: more than %u samples", path, line, MAX_SAMPLES);
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            sample *ns = realloc(s, cap * sizeof *ns);
            if (!ns) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
            s = ns;
        }
        s[(*n)++] = x;
        p = next;
    }
    free(buf);
    if (!rc && *n == 0) rc = sl_errorf(err, SL_EINVAL, "%s: no samples (expected JSON lines with \"t\" and \"rss\")", path);
    if (rc) {
        free(s);
        *n = 0;
        return rc;
    }
    *out = s;
    return 0;
}

/* 1-2-5 tick step giving about `want` ticks over [0, hi]. */
static double tick_step(double hi, int want) {
    double raw = hi / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void xml_escape(char *dst, size_t cap, const char *src) {
    size_t o = 0;
    for (; *src && o + 7 < cap; src++) {
        const char *r = NULL;
        switch (*src) {
        case '<': r = "&lt;"; break;
        case '>': r = "&gt;"; break;
        case '&': r = "&amp;"; break;
        case '"': r = "&quot;"; break;
        }
        if (r) { memcpy(dst + o, r, strlen(r)); o += strlen(r); }
        else if ((unsigned char)*src >= 0x20 || *src == '\t') dst[o++] = *src;
    }
    dst[o] = 0;
}

static int emit(sl_outfile *f, sl_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int emit(sl_outfile *f, sl_error *err, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int l = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (l < 0) return sl_errorf(err, SL_EIO, "format error");
    if ((size_t)l >= sizeof buf) l = (int)sizeof buf - 1;
    return sl_outfile_write(f, buf, (size_t)l, err);
}

static int write_svg(const char *out, const char *title, const sample *s, size_t n, sl_error *err) {
    const double W = 800, H = 420, L = 80, R = 20, T = 50, B = 60;
    double tmax = s[n - 1].t, ymax = 0, peak = 0;
    bool have_peak = false, have_kv = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i].rss > ymax) ymax = s[i].rss;
        if (s[i].peak > ymax) ymax = s[i].peak;
        if (s[i].kv > ymax) ymax = s[i].kv;
        if (s[i].peak >= 0) have_peak = true;
        if (s[i].kv >= 0) have_kv = true;
        if (s[i].rss > peak) peak = s[i].rss;
        if (s[i].peak > peak) peak = s[i].peak;
    }
    if (tmax <= 0) tmax = 1;
    double unit = ymax >= (double)SL_GIB ? (double)SL_GIB : (double)SL_MIB;
    const char *uname = unit == (double)SL_GIB ? "GiB" : "MiB";
    double ytop = ymax / unit;
    if (ytop <= 0) ytop = 1;
    double ystep = tick_step(ytop, 5), xstep = tick_step(tmax, 8);
    ytop = ceil(ytop / ystep) * ystep;
    double xtop = ceil(tmax / xstep) * xstep;
    char etitle[512];
    xml_escape(etitle, sizeof etitle, title);
    sl_outfile f;
    int rc = sl_outfile_open(&f, out, err);
    if (rc) return rc;
#define E(...) if (!rc) rc = emit(&f, err, __VA_ARGS__)
    E("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
      "role=\"img\" aria-labelledby=\"title desc\" font-family=\"sans-serif\" font-size=\"12\">\n",
      W, H, W, H);
    E("<title id=\"title\">Memory over time: %s</title>\n", etitle);
    E("<desc id=\"desc\">Resident memory (RSS)%s%s of a silica process over %.1f s, %zu samples; "
      "peak %.2f %s.</desc>\n",
      have_peak ? ", peak RSS" : "", have_kv ? " and KV-cache bytes" : "", s[n - 1].t, n, peak / unit, uname);
    E("<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    E("<text x=\"%.0f\" y=\"28\" font-size=\"16\" text-anchor=\"middle\">%s</text>\n", W / 2, etitle);
    double pw = W - L - R, ph = H - T - B;
    for (double y = 0; y <= ytop + ystep / 2; y += ystep) {
        double py = T + ph - y / ytop * ph;
        E("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, py, L + pw, py);
        E("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6, py + 4, y);
    }
    for (double x = 0; x <= xtop + xstep / 2; x += xstep) {
        double px = L + x / xtop * pw;
        E("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n", px, T + ph, px, T + ph + 5);
        E("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", px, T + ph + 18, x);
    }
    E("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", L, T + ph, L + pw, T + ph);
    E("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", L, T, L, T + ph);
    E("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time (s)</text>\n", L + pw / 2, H - 18);
    E("<text transform=\"translate(20 %.1f) rotate(-90)\" text-anchor=\"middle\">memory (%s)</text>\n", T + ph / 2,
      uname);
    struct { const char *name, *color; int field; bool on; } series[] = {
        {"RSS", "#1f77b4", 0, true}, {"peak RSS", "#d62728", 1, have_peak}, {"KV cache", "#2ca02c", 2, have_kv}};
    for (int k = 0; k < 3; k++) {
        if (!series[k].on) continue;
        E("<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", series[k].color,
          k == 1 ? " stroke-dasharray=\"6 3\"" : "");
        for (size_t i = 0; i < n && !rc; i++) {
            double v = k == 0 ? s[i].rss : k == 1 ? s[i].peak : s[i].kv;
            if (v < 0) continue;
            E("%.1f,%.1f ", L + s[i].t / xtop * pw, T + ph - v / unit / ytop * ph);
        }
        E("\"/>\n");
        double ly = T + 14 + 16 * k;
        E("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", L + 12, ly,
          L + 36, ly, series[k].color);
        E("<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", L + 42, ly + 4, series[k].name);
    }
    E("</svg>\n");
#undef E
    if (rc) {
        sl_outfile_abort(&f);
        return rc;
    }
    return sl_outfile_commit(&f, err);
}

int cmd_plot(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *title = NULL;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        if ((v = cli_opt_value(argc, argv, &i, "--output", &missing)) ||
            (v = cli_opt_value(argc, argv, &i, "-o", &missing)))
            out = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--title", &missing)))
            title = v;
        else if (missing)
            return cli_usage("plot", "%s needs a value", argv[i]);
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage("plot", "unknown option '%s'", argv[i]);
        else if (!in)
            in = argv[i];
        else
            return cli_usage("plot", "unexpected argument '%s'", argv[i]);
    }
    if (!in) return cli_usage("plot", "missing FILE");
    if (!out) return cli_usage("plot", "missing -o OUT.svg");
    sl_error err = {0};
    sample *s;
    size_t n;
    if (load(in, &s, &n, &err)) return cli_fail(&err);
    int rc = write_svg(out, title ? title : sl_path_basename(in), s, n, &err);
    free(s);
    return rc ? cli_fail(&err) : 0;
}
