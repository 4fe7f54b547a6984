/*
 * report.c — a comparison's outputs (silica/compare.h): the JSON object,
 * the terminal table, and the SVG charts (standalone, or inline in a
 * self-contained HTML page without any script).
 *
 * Invariants: JSON rows carry exactly the documented keys (null where a
 * figure is unknown) plus "error" on a failed row; files are written
 * atomically (sl_outfile); every text put into SVG/HTML is escaped.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "compare/compare_impl.h"
#include "silica/io.h"

static void num_or_null(cJSON *o, const char *k, double v, bool known) {
    if (known && isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

cJSON *sl_cmp_report_json(const sl_cmp_report *r) {
    cJSON *j = cJSON_CreateObject(), *ref = cJSON_AddObjectToObject(j, "reference");
    cJSON_AddStringToObject(ref, "model", r->ref_model);
    cJSON_AddStringToObject(ref, "path", r->ref_path);
    cJSON_AddStringToObject(ref, "engine", r->ref_engine);
    cJSON_AddStringToObject(ref, "version", r->ref_version ? r->ref_version : "");
    cJSON_AddNumberToObject(ref, "ppl", r->ref_ppl);
    cJSON_AddNumberToObject(ref, "tokens", (double)r->tokens);
    cJSON_AddNumberToObject(ref, "prompts", r->n_prompts);
    cJSON_AddNumberToObject(ref, "max_tokens", r->max_tokens);
    cJSON_AddNumberToObject(ref, "ctx", r->n_ctx);
    cJSON_AddStringToObject(j, "silica_device", r->device ? r->device : "cpu");
    cJSON_AddNumberToObject(ref, "file_bytes", (double)r->ref_file_bytes);
    num_or_null(ref, "bits_per_weight", r->ref_bits_per_weight, r->ref_bits_per_weight > 0);
    cJSON *eng = cJSON_AddObjectToObject(ref, "engines");
    for (int k = 0; k < r->n_engines; k++)
        if (r->engine_names[k])
            cJSON_AddStringToObject(eng, r->engine_names[k], r->engine_status[k] ? r->engine_status[k] : "");
    cJSON *rows = cJSON_AddArrayToObject(j, "rows");
    for (int k = 0; k < r->n_rows; k++) {
        const sl_cmp_row *w = &r->rows[k];
        bool ok = !w->error;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", w->model);
        cJSON_AddStringToObject(o, "engine", w->engine);
        num_or_null(o, "kld_mean", w->st.kld_mean, ok);
        num_or_null(o, "kld_p99", w->st.kld_p99, ok);
        num_or_null(o, "kld_max", w->st.kld_max, ok);
        num_or_null(o, "top1", w->st.top1, ok);
        num_or_null(o, "ppl", w->st.ppl, ok && w->st.targets);
        num_or_null(o, "ppl_ref", w->st.ppl_ref, ok && w->st.targets);
        num_or_null(o, "greedy_prefix", w->greedy_prefix, ok);
        num_or_null(o, "prompt_tps", w->prompt_tps, ok && w->prompt_tps > 0);
        num_or_null(o, "gen_tps", w->gen_tps, ok && w->gen_tps > 0);
        num_or_null(o, "ttft_ms", w->ttft_ms, ok && w->ttft_ms > 0);
        num_or_null(o, "peak_rss_bytes", (double)w->peak_rss, ok && w->peak_rss > 0);
        cJSON_AddNumberToObject(o, "file_bytes", (double)w->file_bytes);
        num_or_null(o, "bits_per_weight", w->bits_per_weight, w->bits_per_weight > 0);
        if (w->error) cJSON_AddStringToObject(o, "error", w->error);
        cJSON_AddItemToArray(rows, o);
    }
    return j;
}

static const char *mib(uint64_t b, char *buf, size_t n) {
    if (!b) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.1fM", (double)b / 1048576.0);
    return buf;
}

void sl_cmp_report_table(const sl_cmp_report *r, FILE *f) {
    fprintf(f, "reference: %s on %s (%s), %lld tokens in %d prompt(s), ppl %.4f\n", r->ref_model, r->ref_engine,
            r->ref_version ? r->ref_version : "", (long long)r->tokens, r->n_prompts, r->ref_ppl);
    if (r->device && strcmp(r->device, "cpu") != 0) fprintf(f, "silica's engine on %s\n", r->device);
    for (int k = 0; k < r->n_engines; k++)
        fprintf(f, "engine %-10s %s\n", r->engine_names[k] ? r->engine_names[k] : "?",
                r->engine_status[k] ? r->engine_status[k] : "");
    fprintf(f, "\n%-28s %-9s %10s %10s %10s %7s %10s %9s %7s %9s %9s %8s %8s %8s %6s\n", "model", "engine",
            "KLD mean", "KLD p99", "KLD max", "top1%", "ppl", "dppl", "greedy", "pp tok/s", "tg tok/s", "ttft ms",
            "peak RSS", "size", "bpw");
    for (int k = 0; k < r->n_rows; k++) {
        const sl_cmp_row *w = &r->rows[k];
        char a[32], b[32];
        if (w->error) {
            fprintf(f, "%-28s %-9s %s\n", w->model, w->engine, w->error);
            continue;
        }
        fprintf(f, "%-28s %-9s %10.3g %10.3g %10.3g %7.2f %10.4f %+9.4f %7.2f %9.1f %9.1f %8.1f %8s %8s %6.2f\n",
                w->model, w->engine, w->st.kld_mean, w->st.kld_p99, w->st.kld_max, w->st.top1, w->st.ppl,
                w->st.ppl - w->st.ppl_ref, w->greedy_prefix, w->prompt_tps, w->gen_tps, w->ttft_ms,
                mib(w->peak_rss, a, sizeof a), mib(w->file_bytes, b, sizeof b), w->bits_per_weight);
    }
}

/* ---- SVG ---- */

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static const char *color_of(const char *engine) {
    static const char *const names[] = {"silica", "mlx", "torch", "llama.cpp"};
    static const char *const colors[] = {"#1f77b4", "#d62728", "#ff7f0e", "#2ca02c"};
    for (int k = 0; k < 4; k++)
        if (strcmp(engine, names[k]) == 0) return colors[k];
    return "#7f7f7f";
}

#define W 640
#define H 400
#define ML 70
#define MR 20
#define MT 40
#define MB 50

static void axes(FILE *f, const char *title, const char *xl, const char *yl, double x0, double x1, double y0,
                 double y1) {
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\n<title>", W, H, W, H);
    esc(f, title);   /* title and desc: what a screen reader says of the chart */
    fputs("</title>\n<desc>A chart written by silica compare: ", f);
    esc(f, yl);
    fputs(" (vertical axis) against ", f);
    esc(f, xl);
    fputs(" (horizontal axis), one mark or line per candidate model and engine, labelled with its name.</desc>\n", f);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">", W / 2);
    esc(f, title);
    fprintf(f, "</text>\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", ML, H - MB, W - MR,
            H - MB);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", ML, MT, ML, H - MB);
    for (int t = 0; t <= 4; t++) {
        double xv = x0 + (x1 - x0) * t / 4, yv = y0 + (y1 - y0) * t / 4;
        int px = ML + (W - ML - MR) * t / 4, py = H - MB - (H - MT - MB) * t / 4;
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.3g</text>\n", px, H - MB + 15, xv);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>\n", ML - 5, py + 4, yv);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + W - MR) / 2, H - 12);
    esc(f, xl);
    fprintf(f, "</text>\n<text x=\"14\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 14 %d)\">",
            (MT + H - MB) / 2, (MT + H - MB) / 2);
    esc(f, yl);
    fputs("</text>\n", f);
}

static double px_x(double v, double x0, double x1) { return ML + (W - ML - MR) * (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5); }
static double px_y(double v, double y0, double y1) { return H - MB - (H - MT - MB) * (y1 > y0 ? (v - y0) / (y1 - y0) : 0.5); }

typedef double (*row_value)(const sl_cmp_row *w);
static double v_bpw(const sl_cmp_row *w) { return w->bits_per_weight; }
static double v_kld(const sl_cmp_row *w) { return w->st.kld_mean; }
static double v_rss(const sl_cmp_row *w) { return (double)w->peak_rss / 1048576.0; }
static double v_tps(const sl_cmp_row *w) { return w->gen_tps > 0 ? w->gen_tps : w->prompt_tps; }

static void scatter(FILE *f, const sl_cmp_report *r, const char *title, const char *xl, const char *yl, row_value fx,
                    row_value fy) {
    double x0 = INFINITY, x1 = -INFINITY, y1 = 0;
    for (int k = 0; k < r->n_rows; k++) {
        const sl_cmp_row *w = &r->rows[k];
        if (w->error) continue;
        x0 = fmin(x0, fx(w)), x1 = fmax(x1, fx(w)), y1 = fmax(y1, fy(w));
    }
    if (!isfinite(x0)) x0 = 0, x1 = 1;
    double pad = (x1 - x0) * 0.08 + 1e-9;
    x0 = fmax(0, x0 - pad), x1 += pad;
    y1 = y1 > 0 ? y1 * 1.15 : 1;
    axes(f, title, xl, yl, x0, x1, 0, y1);
    for (int k = 0; k < r->n_rows; k++) {
        const sl_cmp_row *w = &r->rows[k];
        if (w->error) continue;
        double x = px_x(fx(w), x0, x1), y = px_y(fy(w), 0, y1);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"><title>", x, y, color_of(w->engine));
        esc(f, w->model);
        fprintf(f, " / %s</title></circle>\n<text x=\"%.1f\" y=\"%.1f\">", w->engine, x + 7, y - 6);
        esc(f, w->model);
        fprintf(f, " (%s)</text>\n", w->engine);
    }
    fputs("</svg>\n", f);
}

static void per_position(FILE *f, const sl_cmp_report *r) {
    size_t n = 1;
    double y1 = 0;
    for (int k = 0; k < r->n_rows; k++)
        for (size_t i = 0; !r->rows[k].error && i < r->rows[k].klds_n; i++) {
            n = r->rows[k].klds_n > n ? r->rows[k].klds_n : n;
            y1 = fmax(y1, r->rows[k].klds[i]);
        }
    y1 = y1 > 0 ? y1 * 1.1 : 1;
    axes(f, "KL divergence per position", "position (prompts concatenated)", "KL(ref || candidate), nats", 0,
         (double)(n - 1), 0, y1);
    for (int k = 0, line = 0; k < r->n_rows; k++) {
        const sl_cmp_row *w = &r->rows[k];
        if (w->error || !w->klds_n) continue;
        fprintf(f, "<polyline fill=\"none\" stroke-width=\"1.2\" stroke=\"%s\" stroke-dasharray=\"%s\" points=\"",
                color_of(w->engine), line % 3 == 0 ? "none" : line % 3 == 1 ? "4 2" : "1 2");
        for (size_t i = 0; i < w->klds_n; i++)
            fprintf(f, "%.1f,%.1f ", px_x((double)i, 0, (double)(n - 1)), px_y(w->klds[i], 0, y1));
        fputs("\"><title>", f);
        esc(f, w->model);
        fprintf(f, " / %s</title></polyline>\n<text x=\"%d\" y=\"%d\" fill=\"%s\">", w->engine, W - MR - 200,
                MT + 12 * (line + 1), color_of(w->engine));
        esc(f, w->model);
        fprintf(f, " (%s)</text>\n", w->engine);
        line++;
    }
    fputs("</svg>\n", f);
}

static void main_chart(FILE *f, const sl_cmp_report *r) {
    scatter(f, r, "KL divergence vs size", "bits per weight", "mean KL divergence to the reference (nats)", v_bpw,
            v_kld);
}

/* Write what fn prints into path atomically. */
static int write_doc(const char *path, void (*fn)(FILE *, const sl_cmp_report *), const sl_cmp_report *r,
                     sl_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return sl_errorf(err, SL_ENOMEM, "out of memory");
    fn(m, r);
    fclose(m);
    sl_outfile o;
    int rc = sl_outfile_open(&o, path, err);
    if (!rc && (rc = sl_outfile_write(&o, buf, len, err))) sl_outfile_abort(&o);
    else if (!rc) rc = sl_outfile_commit(&o, err);
    free(buf);
    return rc;
}

int sl_cmp_report_svg(const sl_cmp_report *r, const char *path, sl_error *err) {
    return write_doc(path, main_chart, r, err);
}

static void html(FILE *f, const sl_cmp_report *r) {
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>silica compare</title>\n<style>body{font-family:"
          "sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
          "text-align:right}td:first-child,td:nth-child(2){text-align:left}</style></head><body>\n<h1>silica compare</h1>\n<p>Reference: ",
          f);
    esc(f, r->ref_model);
    fprintf(f, " on %s (", r->ref_engine);
    esc(f, r->ref_version);
    fprintf(f, "), %lld tokens in %d prompt(s), perplexity %.4f.</p>\n<table>\n<tr><th>model</th><th>engine</th>"
               "<th>KLD mean</th><th>KLD p99</th><th>KLD max</th><th>top-1 %%</th><th>ppl</th><th>&Delta;ppl</th>"
               "<th>greedy prefix</th><th>prompt tok/s</th><th>gen tok/s</th><th>TTFT ms</th><th>peak RSS MiB</th>"
               "<th>size MiB</th><th>bits/weight</th></tr>\n",
            (long long)r->tokens, r->n_prompts, r->ref_ppl);
    for (int k = 0; k < r->n_rows; k++) {
        const sl_cmp_row *w = &r->rows[k];
        fputs("<tr><td>", f);
        esc(f, w->model);
        fprintf(f, "</td><td>%s</td>", w->engine);
        if (w->error) {
            fputs("<td colspan=\"13\" style=\"text-align:left\">", f);
            esc(f, w->error);
            fputs("</td></tr>\n", f);
            continue;
        }
        fprintf(f, "<td>%.4g</td><td>%.4g</td><td>%.4g</td><td>%.2f</td><td>%.4f</td><td>%+.4f</td><td>%.2f</td>"
                   "<td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.2f</td><td>%.2f</td></tr>\n",
                w->st.kld_mean, w->st.kld_p99, w->st.kld_max, w->st.top1, w->st.ppl, w->st.ppl - w->st.ppl_ref,
                w->greedy_prefix, w->prompt_tps, w->gen_tps, w->ttft_ms, (double)w->peak_rss / 1048576.0,
                (double)w->file_bytes / 1048576.0, w->bits_per_weight);
    }
    fputs("</table>\n<h2>KL divergence vs size</h2>\n", f);
    main_chart(f, r);
    fputs("<h2>Speed vs memory</h2>\n", f);
    scatter(f, r, "Speed vs memory", "peak RSS of the engine process (MiB)", "generation tok/s", v_rss, v_tps);
    fputs("<h2>KL divergence per position</h2>\n", f);
    per_position(f, r);
    fputs("</body></html>\n", f);
}

int sl_cmp_report_html(const sl_cmp_report *r, const char *path, sl_error *err) {
    return write_doc(path, html, r, err);
}
