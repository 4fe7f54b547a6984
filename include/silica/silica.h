/*
 * silica/silica.h — the whole public API of libsilica in one include.
 */
#ifndef SILICA_SILICA_H
#define SILICA_SILICA_H

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
#include "silica/utf8.h"
#include "silica/version.h"
#include "silica/writer.h"
#endif
