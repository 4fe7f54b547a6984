/*
 * cmd_plot.c — `silica plot FILE -o mem.svg`: draw a memory time series
 * (the JSON lines sl_mem_monitor writes: t, rss, peak_rss, kv_bytes,
 * tokens, phase) as a standalone SVG: RSS, peak RSS and KV-cache bytes
 * against time, a dashed vertical marker labelled at every phase change
 * (load, prompt, generate, idle, done), axes, ticks, a legend and a
 * <title>/<desc> for screen readers.
 *
 * Invariants: the series is read by sl_mem_series_load (monitor.c), which
 * reports the first bad line as FILE:LINE; output is atomic (sl_outfile:
 * temp name, fsync, rename).
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
    "Turn a memory time series (JSON lines written by run/chat --monitor: {\"t\", \"rss_bytes\",\n"
    "\"peak_rss_bytes\", \"kv_bytes\", \"tokens\", \"phase\"}; \"rss\"/\"peak_rss\" also read) into an\n"
    "SVG plot of RSS, peak RSS and KV-cache bytes over time, with a marker at each phase change.\n\n"
    "options:\n  -o, --output OUT  the SVG to write\n  --title TEXT      plot title (default: FILE)\n"
    "  --help            this text\n";

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

static int write_svg(const char *out, const char *title, const sl_mem_sample *s, size_t n, sl_error *err) {
    const double W = 800, H = 420, L = 80, R = 20, T = 50, B = 60;
    double tmax = s[n - 1].t, ymax = 0, peak = 0;
    bool have_peak = false, have_kv = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i].rss > ymax) ymax = s[i].rss;
        if (s[i].peak_rss > ymax) ymax = s[i].peak_rss;
        if (s[i].kv_bytes > ymax) ymax = s[i].kv_bytes;
        if (s[i].peak_rss >= 0) have_peak = true;
        if (s[i].kv_bytes >= 0) have_kv = true;
        if (s[i].rss > peak) peak = s[i].rss;
        if (s[i].peak_rss > peak) peak = s[i].peak_rss;
    }
    if (tmax <= 0) tmax = 1;
    double unit = ymax >= (double)SL_GIB ? (double)SL_GIB : (double)SL_MIB;
    const char *uname = unit == (double)SL_GIB ? "GiB" : "MiB";
    double ytop = ymax / unit;
    if (ytop <= 0) ytop = 1;
    double ystep = tick_step(ytop, 5), xstep = tick_step(tmax, 8);
    ytop = ceil(ytop / ystep) * ystep;
    double xtop = ceil(tmax / xstep) * xstep;
    char etitle[512], phases[512] = "";
    xml_escape(etitle, sizeof etitle, title);
    for (size_t i = 0; i < n; i++) {   /* "; phases: load, prompt, generate, done" */
        if (!s[i].phase[0] || (i > 0 && !strcmp(s[i].phase, s[i - 1].phase))) continue;
        char ep[96];
        xml_escape(ep, sizeof ep, s[i].phase);
        size_t l = strlen(phases);
        if (l + strlen(ep) + 16 < sizeof phases) snprintf(phases + l, sizeof phases - l, "%s%s", l ? ", " : "; phases: ", ep);
    }
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
      "peak %.2f %s%s.</desc>\n",
      have_peak ? ", peak RSS" : "", have_kv ? " and KV-cache bytes" : "", s[n - 1].t, n, peak / unit, uname, phases);
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
            double v = k == 0 ? s[i].rss : k == 1 ? s[i].peak_rss : s[i].kv_bytes;
            if (v < 0) continue;
            E("%.1f,%.1f ", L + s[i].t / xtop * pw, T + ph - v / unit / ytop * ph);
        }
        E("\"/>\n");
        /* legend: one row above the plot, right-aligned (the plot area stays free for phase labels) */
        double lx = L + pw - 100 * (3 - k), ly = T - 10;
        E("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", lx, ly,
          lx + 24, ly, series[k].color);
        E("<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx + 30, ly + 4, series[k].name);
    }
    /* phase changes: a dashed vertical line, the new phase's name at its top
     * (labels of changes closer than 12 px move right, so none overlap) */
    double last_label = -1e9;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!s[i].phase[0] || (i > 0 && !strcmp(s[i].phase, s[i - 1].phase))) continue;
        char ep[96];
        xml_escape(ep, sizeof ep, s[i].phase);
        double px = L + s[i].t / xtop * pw;
        E("<line class=\"phase\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" "
          "stroke-dasharray=\"2 3\"/>\n",
          px, T, px, T + ph);
        double tx = px + 11 > last_label + 12 ? px + 11 : last_label + 12;
        last_label = tx;
        E("<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#555\" transform=\"rotate(-90 %.1f %.1f)\" "
          "text-anchor=\"end\">%s</text>\n",
          tx, T + 4, tx, T + 4, ep);
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
    sl_mem_sample *s;
    size_t n;
    if (sl_mem_series_load(in, &s, &n, &err)) return cli_fail(&err);
    int rc = write_svg(out, title ? title : sl_path_basename(in), s, n, &err);
    free(s);
    return rc ? cli_fail(&err) : 0;
}
