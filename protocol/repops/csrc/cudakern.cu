// RepOps GPU fast path: the fixed-order reductions of protocol/repops/reduce.py as single CUDA kernels.
//
// One thread per output element runs that element's canonical scalar program (docs/REPOPS.md) as it
// is written: every product rounded (__fmul_rn), then added (__fadd_rn), chunk sums from +0 and left
// to right. __fmul_rn / __fadd_rn are never contracted into an FMA, and the file is compiled with
// -fmad=false and without --use_fast_math (no flush-to-zero), so each operation is one IEEE-754
// binary32 operation, as in the torch kernels that compute the same ops elementwise.
// Kernels launch on the current stream, so they can be captured in a CUDA graph.

#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdint>
#include <cstring>

namespace {

constexpr uint32_t kCanonicalNaN = 0x7FC00000u;

__device__ __forceinline__ float canon(float x) { return x == x ? x : __uint_as_float(kCanonicalNaN); }

// out[g, i, j] = chunked sum over t of a[g, i, t] * b[g, t, j] (of b[g, t, j] alone when a is null),
// then + bias[j], then * scale, then -inf where j > i (causal); NaN canonical.
__global__ void dot_kernel(const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ bias,
                           float* __restrict__ out, int64_t G, int64_t M, int64_t K, int64_t N, int64_t c,
                           int64_t L, bool scaled, float scale, bool causal) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= G * M * N) return;
  const int64_t j = idx % N;
  const int64_t i = (idx / N) % M;
  const int64_t g = idx / (M * N);
  const float* bg = b + g * K * N + j;
  const float* ar = a ? a + (g * M + i) * K : nullptr;
  float tot = 0.0f;
  for (int64_t p = 0; p < c; ++p) {
    const int64_t t0 = p * L;
    const int64_t t1 = t0 + L < K ? t0 + L : K;
    float s = 0.0f;
    if (ar) {
      for (int64_t t = t0; t < t1; ++t) s = __fadd_rn(s, __fmul_rn(ar[t], bg[t * N]));
    } else {
      for (int64_t t = t0; t < t1; ++t) s = __fadd_rn(s, bg[t * N]);
    }
    tot = p == 0 ? s : __fadd_rn(tot, s);
  }
  if (bias) tot = __fadd_rn(tot, bias[j]);
  if (scaled) tot = __fmul_rn(tot, scale);
  if (causal && j > i) tot = -__int_as_float(0x7F800000);
  out[idx] = canon(tot);
}

// out[v, j] = +0, then for p ascending: out[v, j] + dy[p, j] where ids[p] == v; NaN canonical.
__global__ void embedding_backward_kernel(const int32_t* __restrict__ ids, const float* __restrict__ dy,
                                          float* __restrict__ out, int64_t P, int64_t V, int64_t D) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= V * D) return;
  const int64_t v = idx / D, j = idx % D;
  float acc = 0.0f;
  for (int64_t p = 0; p < P; ++p)
    if (ids[p] == v) acc = __fadd_rn(acc, dy[p * D + j]);
  out[idx] = canon(acc);
}

void check_f32(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.is_cuda() && t.scalar_type() == at::kFloat && t.is_contiguous(), what,
              ": want a contiguous float32 CUDA tensor");
}

constexpr int kThreads = 256;

int64_t blocks(int64_t n) { return (n + kThreads - 1) / kThreads; }

}  // namespace

// a (G, M, K), b (G, K, N), bias (N,) or empty: the chunked dot product of matmul / linear, then
// + bias, then * scale (scale_bits >= 0: binary32 bits), then -inf above the diagonal (causal).
// The same signature as the CPU fast path's dot (csrc/fastcpu.cpp).
at::Tensor dot(const at::Tensor& a, const at::Tensor& b, const at::Tensor& bias, int64_t c, int64_t L,
               int64_t scale_bits, bool causal) {
  check_f32(a, "dot a");
  check_f32(b, "dot b");
  TORCH_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1), "dot shapes");
  const int64_t G = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  TORCH_CHECK(c >= 1 && L >= 1 && (c - 1) * L < K && c * L >= K, "dot: bad chunking");
  const float* bp = nullptr;
  if (bias.numel() > 0) {
    check_f32(bias, "dot bias");
    TORCH_CHECK(bias.numel() == N, "dot bias shape");
    bp = bias.data_ptr<float>();
  }
  const c10::cuda::CUDAGuard guard(a.device());
  at::Tensor out = at::empty({G, M, N}, a.options());
  const int64_t n = G * M * N;
  if (n == 0) return out;
  float scale = 1.0f;
  if (scale_bits >= 0) {
    const uint32_t u = static_cast<uint32_t>(scale_bits);
    std::memcpy(&scale, &u, sizeof scale);
  }
  dot_kernel<<<blocks(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      a.data_ptr<float>(), b.data_ptr<float>(), bp, out.data_ptr<float>(), G, M, K, N, c, L, scale_bits >= 0,
      scale, causal);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

// x (K, N): the chunked sum of each column over the K rows (sum_rows).
at::Tensor colsum(const at::Tensor& x, int64_t c, int64_t L) {
  check_f32(x, "colsum x");
  TORCH_CHECK(x.dim() == 2, "colsum shape");
  const int64_t K = x.size(0), N = x.size(1);
  TORCH_CHECK(c >= 1 && L >= 1 && (c - 1) * L < K && c * L >= K, "colsum: bad chunking");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty({N}, x.options());
  if (N == 0) return out;
  dot_kernel<<<blocks(N), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      nullptr, x.data_ptr<float>(), nullptr, out.data_ptr<float>(), 1, 1, K, N, c, L, false, 1.0f, false);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

// embedding_backward: out[v] = sum of dy[p] over positions p with ids[p] == v, in increasing p from +0
// (ids outside [0, num_embeddings) add nothing, as in the canonical program).
at::Tensor embedding_backward(const at::Tensor& ids, const at::Tensor& dy, int64_t num_embeddings) {
  check_f32(dy, "embedding_backward dy");
  TORCH_CHECK(ids.is_cuda() && ids.scalar_type() == at::kInt && ids.is_contiguous() && dy.dim() == 2 &&
                  ids.numel() == dy.size(0),
              "embedding_backward shapes");
  const int64_t P = dy.size(0), D = dy.size(1);
  const c10::cuda::CUDAGuard guard(dy.device());
  at::Tensor out = at::empty({num_embeddings, D}, dy.options());
  const int64_t n = num_embeddings * D;
  if (n == 0) return out;
  embedding_backward_kernel<<<blocks(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      ids.data_ptr<int32_t>(), dy.data_ptr<float>(), out.data_ptr<float>(), P, num_embeddings, D);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
