/*
 * fuzz_model_config.c — libFuzzer target for config.json parsing
 * (sl_model_config_parse) and the RoPE frequency computation it feeds:
 * any bytes must give either a config or one error line, never a crash,
 * leak or undefined behaviour.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/model_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (!j) return 0;
    sl_model_config c;
    sl_error err = {0};
    if (sl_model_config_parse(j, "config.json", &c, &err) == 0) {
        if (c.rotary_dim <= 2048) {
            float inv[1024], af;
            sl_rope_inv_freq(&c.rope, c.rotary_dim, c.max_position_embeddings, 16, inv, &af);
            sl_rope_inv_freq(&c.rope_local, c.rotary_dim, c.max_position_embeddings, 1 << 20, inv, &af);
        }
        sl_model_config_free(&c);
    } else if (!err.msg[0] || strchr(err.msg, '\n')) {
        abort();   /* failures must say one line */
    }
    cJSON_Delete(j);
    return 0;
}
