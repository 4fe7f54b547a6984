/*
 * fuzz_fit_config.c — libFuzzer target for the memory estimator's tolerant
 * config reader: arbitrary JSON -> sl_fit_model_from_config -> estimates at
 * a few contexts and KV types, recommendations and the guide-table setup
 * for an 8 GB and a 128 GB Mac.  Any crash, leak, UB or overflow is a bug;
 * errors are fine.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "silica/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    cJSON *c = cJSON_ParseWithLength((const char *)data, size);
    if (!c) return 0;
    sl_fit_model *m = NULL;
    sl_error err;
    if (sl_fit_model_from_config(c, "fuzz.json", &m, &err) == 0) {
        static const int64_t ctxs[] = {1, 4096, 1 << 20};
        for (int k = 0; k < 4; k++)
            for (size_t i = 0; i < sizeof ctxs / sizeof ctxs[0]; i++) {
                sl_fit_estimate e;
                (void)sl_fit_estimate_model(m, ctxs[i], (sl_kv_type)k, &e, &err);
            }
        uint64_t rams[] = {8 * SL_GIB, 128 * SL_GIB};
        for (int r = 0; r < 2; r++) {
            sl_fit_budget b = sl_fit_budget_apple(rams[r], 0);
            sl_fit_rec recs[8];
            size_t n;
            sl_fit_setup s;
            (void)sl_fit_recommend(m, &b, 4096, SL_KV_F16, recs, 8, &n, &err);
            (void)sl_fit_best_setup(m, &b, 4096, SL_KV_Q8, &s, &err);
        }
        sl_fit_model_free(m);
    }
    cJSON_Delete(c);
    return 0;
}
