/*
 * vk_impl.h — the Vulkan layer of the GPU engine, private to src/gpu:
 * the loader's entry points (opened with dlopen, VK_NO_PROTOTYPES), a device
 * context (one compute queue), buffers, the compute pipelines built from the
 * embedded SPIR-V, and recorded dispatches.
 *
 * Invariants:
 *  - Every Vulkan entry point is called through vk (vk_loader.c), filled once
 *    per process; vk_load fails with one line naming the library it tried.
 *  - Every pipeline shares one layout: set 0 = VK_BINDINGS storage buffers,
 *    one push-constant range of VK_PUSH_BYTES.  Offsets into buffers travel
 *    as push constants (in elements), so a descriptor binds a whole buffer.
 *  - A buffer is device-local (weights, activations, KV cache) or
 *    host-visible and coherent, mapped for its lifetime (ids, RoPE tables,
 *    logits, staging).  Sizes are checked against the heap before any
 *    allocation: too little device memory is one line, not a driver crash.
 */
#ifndef SILICA_VK_IMPL_H
#define SILICA_VK_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vulkan/vulkan.h>

#include "silica/error.h"
#include "silica/gpu.h"

/* Vulkan drivers keep one-time state for the life of the process (a
 * pthread_once cache in Mesa's lavapipe, LLVM's, driconf's) and never free
 * it; LeakSanitizer would report it as a leak of ours, from a driver it can
 * no longer name once the loader has closed it.  The calls into the driver
 * that create or enumerate its objects run between VK_DRIVER_CALL_BEGIN and
 * VK_DRIVER_CALL_END, so what the driver allocates inside is not reported;
 * nothing of ours is allocated between the two.  Empty without ASan. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SL_VK_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SL_VK_LSAN 1
#endif
#if defined(SL_VK_LSAN)
#include <sanitizer/lsan_interface.h>
#define VK_DRIVER_CALL_BEGIN() __lsan_disable()
#define VK_DRIVER_CALL_END() __lsan_enable()
#else
#define VK_DRIVER_CALL_BEGIN() ((void)0)
#define VK_DRIVER_CALL_END() ((void)0)
#endif

#define VK_FN_LIST(X)                                                                                                  \
    X(vkCreateInstance) X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties)            \
    X(vkGetPhysicalDeviceProperties2) X(vkGetPhysicalDeviceFeatures2) X(vkGetPhysicalDeviceMemoryProperties)           \
    X(vkGetPhysicalDeviceQueueFamilyProperties) X(vkEnumerateDeviceExtensionProperties) X(vkCreateDevice)              \
    X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkCreateBuffer) X(vkDestroyBuffer) X(vkGetBufferMemoryRequirements)       \
    X(vkAllocateMemory) X(vkFreeMemory) X(vkBindBufferMemory) X(vkMapMemory) X(vkUnmapMemory)                          \
    X(vkCreateShaderModule) X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout) X(vkDestroyDescriptorSetLayout)    \
    X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout) X(vkCreateComputePipelines) X(vkDestroyPipeline)              \
    X(vkCreateDescriptorPool) X(vkDestroyDescriptorPool) X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets)         \
    X(vkCreateCommandPool) X(vkDestroyCommandPool) X(vkAllocateCommandBuffers) X(vkBeginCommandBuffer)                 \
    X(vkEndCommandBuffer) X(vkResetCommandBuffer) X(vkCmdBindPipeline) X(vkCmdBindDescriptorSets)                      \
    X(vkCmdPushConstants) X(vkCmdDispatch) X(vkCmdPipelineBarrier) X(vkCmdCopyBuffer) X(vkCmdFillBuffer)               \
    X(vkCmdWriteTimestamp) X(vkCmdResetQueryPool) X(vkCreateQueryPool) X(vkDestroyQueryPool) X(vkGetQueryPoolResults)  \
    X(vkCreateFence) X(vkDestroyFence) X(vkResetFences) X(vkWaitForFences) X(vkQueueSubmit)

typedef struct sl_vk_fns {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    PFN_vkEnumerateInstanceVersion vkEnumerateInstanceVersion;
    PFN_vkEnumerateInstanceExtensionProperties vkEnumerateInstanceExtensionProperties;
#define VK_FN_FIELD(f) PFN_##f f;
    VK_FN_LIST(VK_FN_FIELD)
#undef VK_FN_FIELD
} sl_vk_fns;

extern sl_vk_fns sl_vk;
#define vk sl_vk   /* the loaded entry points, vk.vkCreateDevice(...) */

#define VK_BINDINGS 6
#define VK_PUSH_BYTES 128
#define VK_MAX_SETS 4096
#define VK_TILED_INVOCATIONS 256u    /* matmul_tiled.comp's workgroup */
#define VK_TILED_SHARED_BYTES 17152u /* and its shared memory (above Vulkan's 16 KiB minimum limit) */
#define VK_TILED_ROWS 64u            /* and its rows a workgroup (tokens: VK_TILED_TOKENS) */
#define VK_TILED2_SHARED_BYTES 28928u /* matmul_tiled2.comp's shared memory (256 invocations too) */
#define VK_TILED2_ROWS 128u          /* and its rows a workgroup */
#define VK_TILED3_SHARED_BYTES 17472u /* matmul_tiled3.comp's shared memory (two buffers; SILICA_GPU_TILE=3, the int8
                                        formats; 128 invocations, within the 256 the others need) */
#define VK_TILED3_ROWS 128u          /* and its rows a workgroup */
#define VK_TILED_TOKENS 64u          /* tokens a workgroup of the tiled kernels */
#define VK_MV_INVOCATIONS 256u       /* matmul.comp's wide workgroup, where the device allows it (else 128) */
#define VK_MV_NARROW 64u             /* and its narrow one (a subgroup a row) */
#define VK_MV_ROWS 1u                /* matmul.comp's rows a team by default (its NR; at most 4; H100: 1 beat 2 by 2-21 % in generation) */
#define VK_MV_STEPS 1u               /* matmul.comp's steps along a row a lane loads before summing them (NU; on
                                        an H100 2 and 4 were slower) */
#define VK_MV_TOKENS 8u              /* and its tokens a workgroup (NT) but in the one-token pipelines */
#define VK_MV_SUMS 2048u             /* its shared sums: subgroups of a wide workgroup * rows * tokens at most */
#define VK_MAX_QUERIES 4096          /* timestamps a submission (SILICA_PROFILE: one per dispatch group) */
#define VK_PROF_TAGS 16              /* what a dispatch group is counted as (the session names them) */

/* The shaders (src/gpu/shaders/<name>.comp), in pipeline order. */
typedef enum vk_kernel {
    VK_EMBED, VK_MATMUL, VK_RMSNORM, VK_QKROPE, VK_GLU, VK_QUANTX, VK_MATMUL_TILED,
    VK_MATMUL_WIDE,   /* matmul.comp again, specialized for teams of several subgroups */
    VK_ATTN_SPLIT, VK_ATTN_MERGE,
    VK_MATMUL_1, VK_MATMUL_WIDE_1,   /* matmul.comp again, specialized for one token (generation) */
    VK_MATMUL_TILED3, /* matmul_tiled3.comp, created where tile is 3 (VK_MATMUL_TILED is then matmul_tiled.comp) */
    VK_KERNEL_COUNT
} vk_kernel;

typedef struct vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    uint64_t size;
    void *map;                    /* host-visible buffers: mapped for their lifetime */
} vk_buf;

/* Phases the counters and the profile keep apart: generation (batches of
 * one token) and prompts (more); uploads at load time count in neither. */
typedef enum vk_phase { VK_PHASE_NONE = -1, VK_PHASE_TG, VK_PHASE_PP, VK_PHASES } vk_phase;

/* Counters of one phase.  Device time (SILICA_PROFILE, where the queue has
 * timestamps): a timestamp at the end of every dispatch group (the
 * dispatches between two barriers), so tag_ns[t] is the time from the end
 * of the previous group to the end of the groups tagged t (their barrier,
 * their launch, their work) and the tag_ns add up to span_ns, the device
 * time from the first command of each submission to its last. */
typedef struct vk_stats {
    uint64_t tag_ns[VK_PROF_TAGS], tag_calls[VK_PROF_TAGS];
    uint64_t span_ns;
    uint64_t dispatches, barriers, submits, recordings;
} vk_stats;

/* One recorded command buffer's dispatch groups: what every submission of it
 * adds to its phase's counters, and which tag each timestamp closes. */
typedef struct vk_rec {
    uint64_t tag_calls[VK_PROF_TAGS];
    uint64_t dispatches, barriers;
    int phase, n_ts, slots;       /* phase recorded for; timestamps written; descriptor-set slots used */
    uint8_t ts_tag[VK_MAX_QUERIES];   /* the tag of the group ending at timestamp i */
} vk_rec;

typedef struct vk_ctx {
    VkInstance inst;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    sl_gpu_device_info info;
    VkPhysicalDeviceMemoryProperties memp;
    uint64_t budget, used;        /* device-local bytes allowed (heap, or SILICA_GPU_MEMORY) and allocated */
    VkCommandPool cpool;
    VkCommandBuffer cmd;          /* one-time recordings (uploads, prompts) */
    VkCommandBuffer kept;         /* the recording kept for resubmission (vk_begin_kept) */
    VkCommandBuffer rec_cmd;      /* the one being recorded */
    VkFence fence;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe[VK_KERNEL_COUNT];
    VkDescriptorPool dpool;
    VkDescriptorSet sets[VK_MAX_SETS];        /* cached per dispatch slot of a recording */
    VkBuffer set_bufs[VK_MAX_SETS][VK_BINDINGS];
    int n_sets, slot;
    vk_kernel bound;              /* the pipeline bound in this recording (VK_KERNEL_COUNT: none) */
    VkQueryPool qpool;            /* VK_MAX_QUERIES timestamps, when the queue has them */
    double ts_period_ns;          /* limits.timestampPeriod */
    uint64_t ts_mask;             /* the queue family's timestampValidBits */
    bool prof;                    /* timestamps around dispatch groups (SILICA_PROFILE) */
    int phase, tag;               /* vk_phase of the recording, tag of the next dispatch (the session's) */
    bool open_group, join;        /* a dispatch since the last barrier; the next one joins it */
    int group_tag;                /* tag of the open group */
    vk_rec cur;                   /* the recording in progress (or last submitted) */
    vk_rec kept_rec;              /* the kept one's, while kept_ok */
    bool kept_ok;                 /* kept may be submitted again: recorded, and none of its descriptor sets rewritten */
    vk_stats stats[VK_PHASES];
    vk_buf dummy;                 /* bound to unused slots */
    uint32_t tile;                /* the prompt kernel the device runs (its workgroup size and shared memory): 1
                                     matmul_tiled.comp, 2 matmul_tiled2.comp (SILICA_GPU_TILE=2), 3 matmul_tiled3.comp
                                     for the int8-activation GGUF formats and matmul_tiled.comp for the others
                                     (SILICA_GPU_TILE=3); 1 where the device's limits allow only that, 0 none
                                     (matmul.comp does all) */
    uint32_t mv_wg;               /* matmul.comp's wide workgroup size (a power of two, 128 or 256) */
    uint32_t mv_rows;             /* matmul.comp's rows a team (its NR: VK_MV_ROWS, or SILICA_GPU_ROWS 1 .. 4) */
    uint32_t mv_steps;            /* and a lane's steps in flight (its NU: VK_MV_STEPS, or SILICA_GPU_STEPS 1 .. 4) */
    bool int_dot;                 /* the matmuls' int8 dots as packed dot products (matmul_idot, matmul_tiled_idot:
                                     info.int_dot, unless SILICA_GPU_INT_DOT=0), the extension enabled on the device */
} vk_ctx;

/* Open the loader (once; SILICA_VULKAN_LIBRARY overrides the file name). */
int vk_load(sl_error *err);
/* An instance (portability enumeration where the loader has it: MoltenVK). */
int vk_instance_new(VkInstance *out, sl_error *err);
/* Fill info for a physical device (index i). */
void vk_device_info(VkPhysicalDevice p, int i, sl_gpu_device_info *info);
/* Short text for a VkResult ("VK_ERROR_OUT_OF_DEVICE_MEMORY"). */
const char *vk_result_name(VkResult r);

/* Open the device sel chooses (kind AUTO: only discrete/integrated GPUs;
 * GPU: index, or the first GPU, else any device).  *none set (and 0
 * returned with ctx untouched) when AUTO finds no GPU: why in err. */
int vk_ctx_open(vk_ctx *c, sl_device_sel sel, bool *none, sl_error *err);
void vk_ctx_close(vk_ctx *c);

/* Allocate a buffer of size bytes: device-local, or host-visible + mapped. */
int vk_buf_new(vk_ctx *c, uint64_t size, bool host, const char *what, vk_buf *b, sl_error *err);
void vk_buf_free(vk_ctx *c, vk_buf *b);
/* Copy n bytes from host memory into b at off, through staging (which is
 * host-visible; chunks of its size). */
int vk_upload(vk_ctx *c, vk_buf *staging, vk_buf *b, uint64_t off, const void *src, uint64_t n, sl_error *err);

/* Recording: begin, dispatches, submit and wait.  A dispatch waits for
 * every earlier one (a compute->compute barrier before it) unless vk_join
 * was called just before it: then it joins the open group, running
 * alongside the dispatches since the last barrier (it must neither read
 * what they write nor write what they read or write). */
int vk_begin(vk_ctx *c, sl_error *err);
/* The same into the kept command buffer: after vk_submit_wait, vk_submit_kept
 * submits it again (the same dispatches and push constants: what changes
 * between submissions lives in buffers), as long as vk_kept_ok says so (a
 * later recording that rewrites one of its descriptor sets ends that). */
int vk_begin_kept(vk_ctx *c, sl_error *err);
int vk_submit_kept(vk_ctx *c, sl_error *err);
static inline bool vk_kept_ok(const vk_ctx *c) { return c->kept_ok; }
void vk_dispatch(vk_ctx *c, vk_kernel k, const vk_buf *const bufs[VK_BINDINGS], const void *push, size_t push_size,
                 uint32_t gx, uint32_t gy, uint32_t gz);
static inline void vk_join(vk_ctx *c) { c->join = true; }
int vk_submit_wait(vk_ctx *c, sl_error *err);

/* Host-side times of one phase (the session's, SILICA_PROFILE). */
typedef struct vk_host_stats {
    uint64_t tokens, batches;
    uint64_t wall_ns;    /* the whole forward call: recording, submission, wait, logits copy */
    uint64_t record_ns;  /* from the call to the submission (uploads, RoPE tables, recording) */
    uint64_t wait_ns;    /* vkQueueSubmit to the fence (the device's time and the submission's latency) */
    uint64_t copy_ns;    /* the logits out of the host-visible buffer */
} vk_host_stats;

uint64_t vk_now_ns(void);
/* SILICA_PROFILE's lines on stderr (vk_profile.c): per phase with tokens,
 * wall time per token against device time per token, the host's parts,
 * dispatches / barriers / submissions per token, and device time per tag
 * (tags: n_tags names, the session's). */
void vk_profile_print(const vk_ctx *c, const vk_host_stats host[VK_PHASES], const char *const *tags, int n_tags);

#endif
