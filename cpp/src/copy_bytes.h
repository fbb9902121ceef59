// memcpy for short runs (a 3-channel kernel row is 9 bytes): two overlapping
// fixed-size copies instead of a library call. Internal linkage, since ISA
// folders compiled with other flags include it too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lowp {
namespace {

inline void copy_bytes(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n >= 64) {
    std::memcpy(dst, src, n);
  } else if (n >= 32) {
    std::memcpy(dst, src, 32);
    std::memcpy(dst + n - 32, src + n - 32, 32);
  } else if (n >= 16) {
    std::memcpy(dst, src, 16);
    std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(dst, src, 4);
    std::memcpy(dst + n - 4, src + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

// count pixels of n elements each, adjacent at src, to dst with pixels
// `stride` elements apart (a kernel's few-channel tile, finished in one
// piece, stored into a channel slice or a whole tensor).
template <typename T>
inline void store_pixels(T* dst, const T* src, size_t count, size_t n, size_t stride) {
  if (stride == n) {
    std::memcpy(dst, src, count * n * sizeof(T));
    return;
  }
  for (size_t p = 0; p < count; ++p) {
    copy_bytes(reinterpret_cast<uint8_t*>(dst + p * stride),
               reinterpret_cast<const uint8_t*>(src + p * n), n * sizeof(T));
  }
}

}  // namespace
}  // namespace lowp
