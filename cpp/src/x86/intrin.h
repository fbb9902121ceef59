// The x86 intrinsics for the ISA folders, native or through SIMDe.
//
// A native build includes <immintrin.h>; each file is compiled with its own
// ISA's flags (CMake's lowp_add_isa). The test build compiles the AVX-512 and
// AVX-VNNI sources a second time with LOWP_SIMDE defined and no ISA flags:
// SIMDe's native aliases then provide the same intrinsic names in portable
// code, so the kernels' logic is checked bit for bit on any x86-64 CPU. The
// kernels keep to what SIMDe 0.7 implements: no masked loads or stores, no
// _mm512_cvtepu8_epi16, and the VEX-only name _mm256_dpbusd_avx_epi32 is
// reached through lowp_dpbusd_ymm below.
//
// Everything an ISA folder defines lives in namespace lowp::LOWP_ISA_NS, so
// the two builds of one source link into one test binary without clashing.
#pragma once

#if defined(LOWP_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define LOWP_ISA_NS simde_build
#define LOWP_PATH_NAME(name) name "_simde"
#else
#include <immintrin.h>
#define LOWP_ISA_NS native
#define LOWP_PATH_NAME(name) name
#endif

// vpdpbusd on 8 lanes: u8 x s8 quadruples added to int32 lanes, wrapping.
// The VEX encoding (AVX-VNNI) where the file is built for it, else the EVEX
// one (AVX512_VNNI + VL) or SIMDe's.
#if defined(__AVXVNNI__) && !defined(LOWP_SIMDE)
#define lowp_dpbusd_ymm(acc, a, b) _mm256_dpbusd_avx_epi32((acc), (a), (b))
#else
#define lowp_dpbusd_ymm(acc, a, b) _mm256_dpbusd_epi32((acc), (a), (b))
#endif
