/*
 * silica/silica.h — the whole public API of libsilica in one include.
 */
#ifndef SILICA_SILICA_H
#define SILICA_SILICA_H

#define SILICA_VERSION "0.1.0"

#include "silica/api.h"
#include "silica/checkpoint.h"
#include "silica/cpu.h"
#include "silica/dtype.h"
#include "silica/error.h"
#include "silica/generate.h"
#include "silica/gguf.h"
#include "silica/gpu.h"
#include "silica/io.h"
#include "silica/lfs.h"
#include "silica/memory.h"
#include "silica/model.h"
#include "silica/quant.h"
#include "silica/registry.h"
#include "silica/runtime.h"
#include "silica/safetensors.h"
#include "silica/serve.h"
#include "silica/convert.h"
#include "silica/template.h"
#include "silica/tokenizer.h"
#include "silica/torch.h"
#include "silica/writer.h"

#ifdef __cplusplus
extern "C" {
#endif
SL_API const char *sl_version(void);
SL_API const char *sl_build_options(void);   /* compiler, build type, sanitizers, SIMD compiled in */
#ifdef __cplusplus
}
#endif
#endif
