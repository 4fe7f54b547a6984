/*
 * vk_loader.c — the Vulkan loader, opened at run time, and the device list.
 *
 * The loader library is libvulkan.so.1 (Linux), libvulkan.1.dylib or
 * libMoltenVK.dylib (macOS; MoltenVK alone is itself a Vulkan driver with
 * vkGetInstanceProcAddr), or SILICA_VULKAN_LIBRARY.  Every entry point is
 * resolved once through vkGetInstanceProcAddr; a missing one is an error
 * naming it.  Instances enable VK_KHR_portability_enumeration where the
 * loader offers it, so MoltenVK's devices are listed (the Vulkan loader
 * hides "portability" drivers otherwise).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/vk_impl.h"

sl_vk_fns sl_vk;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];
static void *lib;

static const char *const lib_names[] = {
#ifdef __APPLE__
    "libvulkan.1.dylib", "libvulkan.dylib", "libMoltenVK.dylib",
#else
    "libvulkan.so.1", "libvulkan.so",
#endif
};

static void load(void) {
    const char *env = getenv("SILICA_VULKAN_LIBRARY");
    /* dlerror's text lives until the next dl call: copied at once (the second
     * name's failure used to leave the first message pointing at freed bytes) */
    char dl_msg[256] = "not found";
    const char *names[sizeof lib_names / sizeof lib_names[0]];
    size_t n = 0;
    if (env && *env) names[n++] = env;
    else
        for (; n < sizeof lib_names / sizeof lib_names[0]; n++) names[n] = lib_names[n];
    for (size_t i = 0; i < n && !lib; i++) {
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        const char *e = lib ? NULL : dlerror();
        if (i == 0 && e) snprintf(dl_msg, sizeof dl_msg, "%s", e);
    }
    if (!lib) {
        snprintf(load_error, sizeof load_error, "no Vulkan loader: cannot open %s (%s)", names[0], dl_msg);
        return;
    }
    *(void **)&vk.vkGetInstanceProcAddr = dlsym(lib, "vkGetInstanceProcAddr");
    if (!vk.vkGetInstanceProcAddr) {
        snprintf(load_error, sizeof load_error, "the Vulkan loader %s has no vkGetInstanceProcAddr",
                 env && *env ? env : lib_names[0]);
        return;
    }
    vk.vkEnumerateInstanceVersion =
        (PFN_vkEnumerateInstanceVersion)vk.vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
    vk.vkEnumerateInstanceExtensionProperties = (PFN_vkEnumerateInstanceExtensionProperties)vk.vkGetInstanceProcAddr(
        NULL, "vkEnumerateInstanceExtensionProperties");
    vk.vkCreateInstance = (PFN_vkCreateInstance)vk.vkGetInstanceProcAddr(NULL, "vkCreateInstance");
    if (!vk.vkCreateInstance || !vk.vkEnumerateInstanceExtensionProperties)
        snprintf(load_error, sizeof load_error, "the Vulkan loader has no vkCreateInstance");
}

int vk_load(sl_error *err) {
    pthread_once(&load_once, load);
    return load_error[0] ? sl_errorf(err, SL_EUNSUPPORTED, "%s", load_error) : 0;
}

/* Instance-level entry points (device ones too: the loader dispatches them). */
static int resolve(VkInstance inst, sl_error *err) {
#define VK_FN_GET(f)                                                                                                   \
    if (!(vk.f = (PFN_##f)vk.vkGetInstanceProcAddr(inst, #f)))                                                         \
        return sl_errorf(err, SL_EUNSUPPORTED, "the Vulkan loader has no %s (Vulkan 1.1 is needed)", #f);
    VK_FN_LIST(VK_FN_GET)
#undef VK_FN_GET
    return 0;
}

int vk_instance_new(VkInstance *out, sl_error *err) {
    int rc = vk_load(err);
    if (rc) return rc;
    uint32_t api = VK_API_VERSION_1_0;
    if (vk.vkEnumerateInstanceVersion) vk.vkEnumerateInstanceVersion(&api);
    if (api < VK_API_VERSION_1_1)
        return sl_errorf(err, SL_EUNSUPPORTED, "the Vulkan loader is version 1.0; the GPU engine needs 1.1");
    const char *exts[2];
    uint32_t n_ext = 0, n_avail = 0;
    bool portability = false;
    vk.vkEnumerateInstanceExtensionProperties(NULL, &n_avail, NULL);
    VkExtensionProperties *avail = calloc(n_avail ? n_avail : 1, sizeof *avail);
    if (avail && vk.vkEnumerateInstanceExtensionProperties(NULL, &n_avail, avail) == VK_SUCCESS)
        for (uint32_t i = 0; i < n_avail; i++)
            if (strcmp(avail[i].extensionName, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME) == 0) portability = true;
    free(avail);
    if (portability) exts[n_ext++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "silica",
                             .pEngineName = "silica", .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app,
                               .enabledExtensionCount = n_ext, .ppEnabledExtensionNames = exts,
                               .flags = portability ? VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR : 0};
    VK_DRIVER_CALL_BEGIN();
    VkResult r = vk.vkCreateInstance(&ci, NULL, out);
    VK_DRIVER_CALL_END();
    if (r != VK_SUCCESS)
        return sl_errorf(err, SL_EUNSUPPORTED, "no Vulkan driver: vkCreateInstance failed (%s; VK_ICD_FILENAMES=%s)",
                         vk_result_name(r), getenv("VK_ICD_FILENAMES") ? getenv("VK_ICD_FILENAMES") : "unset");
    if ((rc = resolve(*out, err))) {
        if (vk.vkDestroyInstance) vk.vkDestroyInstance(*out, NULL);
        return rc;
    }
    return 0;
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

void vk_device_info(VkPhysicalDevice p, int i, sl_gpu_device_info *info) {
    memset(info, 0, sizeof *info);
    info->index = i;
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupProperties sub = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 pr = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sub};
    VkPhysicalDeviceProperties base;
    vk.vkGetPhysicalDeviceProperties(p, &base);
    /* driver properties: Vulkan 1.2 or VK_KHR_driver_properties; chain it only then */
    uint32_t n_ext = 0;
    bool has_drv = base.apiVersion >= VK_API_VERSION_1_2, has_f16i8 = has_drv, has_8bit = has_drv, has_idot = false;
    vk.vkEnumerateDeviceExtensionProperties(p, NULL, &n_ext, NULL);
    VkExtensionProperties *ext = calloc(n_ext ? n_ext : 1, sizeof *ext);
    if (ext && vk.vkEnumerateDeviceExtensionProperties(p, NULL, &n_ext, ext) == VK_SUCCESS)
        for (uint32_t k = 0; k < n_ext; k++) {
            if (strcmp(ext[k].extensionName, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME) == 0) has_drv = true;
            if (strcmp(ext[k].extensionName, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME) == 0) has_f16i8 = true;
            if (strcmp(ext[k].extensionName, VK_KHR_8BIT_STORAGE_EXTENSION_NAME) == 0) has_8bit = true;
            if (strcmp(ext[k].extensionName, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME) == 0) has_idot = true;
        }
    free(ext);
    if (has_drv) sub.pNext = &drv;
    vk.vkGetPhysicalDeviceProperties2(p, &pr);
    const VkPhysicalDeviceProperties *b = &pr.properties;
    snprintf(info->name, sizeof info->name, "%s", b->deviceName);
    info->type = type_name(b->deviceType);
    info->vendor_id = b->vendorID;
    info->device_id = b->deviceID;
    snprintf(info->api_version, sizeof info->api_version, "%u.%u.%u", VK_API_VERSION_MAJOR(b->apiVersion),
             VK_API_VERSION_MINOR(b->apiVersion), VK_API_VERSION_PATCH(b->apiVersion));
    if (has_drv) snprintf(info->driver, sizeof info->driver, "%.60s %.60s", drv.driverName, drv.driverInfo);
    info->subgroup_size = b->apiVersion >= VK_API_VERSION_1_1 ? sub.subgroupSize : 0;

    VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice8BitStorageFeatures s8 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
    VkPhysicalDevice16BitStorageFeatures s16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceFeatures2 ft = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s16};
    void **tail = &s16.pNext;
    if (has_f16i8) *tail = &f16, tail = &f16.pNext;
    if (has_8bit) *tail = &s8, tail = &s8.pNext;
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR idot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR};
    if (has_idot) *tail = &idot;   /* the extension: the instance asks for Vulkan 1.1, so not the 1.3 core feature */
    vk.vkGetPhysicalDeviceFeatures2(p, &ft);
    info->int_dot = has_idot && idot.shaderIntegerDotProduct;
    info->fp16 = f16.shaderFloat16;
    info->int8 = f16.shaderInt8;
    info->storage16 = s16.storageBuffer16BitAccess;
    info->storage8 = s8.storageBuffer8BitAccess;

    VkPhysicalDeviceMemoryProperties mp;
    vk.vkGetPhysicalDeviceMemoryProperties(p, &mp);
    info->n_heaps = (int)(mp.memoryHeapCount < SL_GPU_MAX_HEAPS ? mp.memoryHeapCount : SL_GPU_MAX_HEAPS);
    for (int h = 0; h < info->n_heaps; h++) {
        info->heap_bytes[h] = mp.memoryHeaps[h].size;
        info->heap_device_local[h] = mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
    }
    uint32_t nq = 0;
    vk.vkGetPhysicalDeviceQueueFamilyProperties(p, &nq, NULL);
    VkQueueFamilyProperties *q = calloc(nq ? nq : 1, sizeof *q);
    if (q) {
        vk.vkGetPhysicalDeviceQueueFamilyProperties(p, &nq, q);
        for (uint32_t k = 0; k < nq; k++)
            if (q[k].queueFlags & VK_QUEUE_COMPUTE_BIT) info->usable = b->apiVersion >= VK_API_VERSION_1_1;
        /* matmul.comp sums with subgroupAdd in compute shaders */
        if (!(sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ||
            !(sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT))
            info->usable = false;
        free(q);
    }
}

bool sl_gpu_built(void) { return true; }

int sl_gpu_devices(sl_gpu_device_info **out, int *n, sl_error *err) {
    *out = NULL;
    *n = 0;
    VkInstance inst;
    int rc = vk_instance_new(&inst, err);
    if (rc) return rc;
    uint32_t np = 0;
    VK_DRIVER_CALL_BEGIN();
    VkResult r = vk.vkEnumeratePhysicalDevices(inst, &np, NULL);
    VK_DRIVER_CALL_END();
    VkPhysicalDevice *ps = r == VK_SUCCESS ? calloc(np ? np : 1, sizeof *ps) : NULL;
    sl_gpu_device_info *info = ps ? calloc(np ? np : 1, sizeof *info) : NULL;
    if (r == VK_SUCCESS && info) {
        VK_DRIVER_CALL_BEGIN();
        r = vk.vkEnumeratePhysicalDevices(inst, &np, ps);
        VK_DRIVER_CALL_END();
    }
    if (r == VK_SUCCESS && info) {
        for (uint32_t i = 0; i < np; i++) vk_device_info(ps[i], (int)i, &info[i]);
        *out = info;
        *n = (int)np;
    } else {
        free(info);
        rc = r != VK_SUCCESS ? sl_errorf(err, SL_EUNSUPPORTED, "vkEnumeratePhysicalDevices failed (%s)", vk_result_name(r))
                             : sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    free(ps);
    vk.vkDestroyInstance(inst, NULL);
    return rc;
}

const char *vk_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    default: return "VkResult error";
    }
}
