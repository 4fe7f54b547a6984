// intdot.glsl — sums of products of 4 int8 codes packed in a word (element
// 4k + i in byte i), for the GGUF matmuls (matmul.comp, matmul_tiled.comp):
// dot4(w, x) = sum_i w_i * x_i, both signed; dot4u(x, u) = the same with u's
// bytes unsigned (0..255).  Built two ways (CMakeLists.txt): byte extracts
// and multiplies, and with SILICA_INT_DOT as SPIR-V's packed 4x8-bit dot
// products (OpSDot, OpSUDot), which vk_device.c takes where the device has
// shaderIntegerDotProduct (VK_KHR_shader_integer_dot_product).  Both give
// the exact integer sum, so the shaders' results do not depend on the build.
// INT_DOT says which one this is.  Include it before any declaration (its
// #extension directive).
#ifdef SILICA_INT_DOT
#extension GL_EXT_spirv_intrinsics : require
const bool INT_DOT = true;
// SPIR-V's OpSDot (4450) and OpSUDot (4452: first operand signed, second unsigned) on words of 4 packed bytes
// (packed vector format 0: 4x8 bit), capabilities DotProduct (6019) and DotProductInput4x8BitPacked (6018):
// SPV_KHR_integer_dot_product, which the device enables (vk_device.c); spirv_instructions, since the glslc of
// Debian 12 lacks GL_EXT_integer_dot_product.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot_4x8(uint a, uint b, spirv_literal int packed_format);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4452)
int sudot_4x8(uint a, uint b, spirv_literal int packed_format);
int dot4(uint w, uint xv) { return sdot_4x8(w, xv, 0); }
int dot4u(uint xv, uint u) { return sudot_4x8(xv, u, 0); }
#else
const bool INT_DOT = false;
int dot4(uint w, uint xv) {
    int s = 0;
    for (int i = 0; i < 32; i += 8) s += bitfieldExtract(int(w), i, 8) * bitfieldExtract(int(xv), i, 8);
    return s;
}
int dot4u(uint xv, uint u) {
    int s = 0;
    for (int i = 0; i < 32; i += 8) s += bitfieldExtract(int(xv), i, 8) * int(bitfieldExtract(u, i, 8));
    return s;
}
#endif
