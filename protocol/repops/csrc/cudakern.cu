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

__device__ __forceinline__ float from_bits(uint32_t b) { return __uint_as_float(b); }

__device__ __forceinline__ float pow2(int32_t n) { return __uint_as_float(static_cast<uint32_t>(n + 127) << 23); }

// fmath.sqrt, instruction for instruction (as csrc/fastcpu.cpp's sqrt_): subnormals scaled by 2^24,
// x = m * 4^q, y0 = 2/3 + (1/3) m, three Heron steps, y * 2^q (* 2^-12 if scaled), specials last.
__device__ float sqrt_(float x) {
  const bool tiny = x < from_bits(0x00800000u);
  const float xs = tiny ? __fmul_rn(x, 16777216.0f) : x;
  const uint32_t b = __float_as_uint(xs);
  const int32_t ee = static_cast<int32_t>(((b >> 23) & 0xFFu) - 127u);
  const int32_t q = ee >> 1;
  const int32_t r = static_cast<int32_t>(static_cast<uint32_t>(ee) - (static_cast<uint32_t>(q) << 1));
  const float m = from_bits((b & 0x7FFFFFu) | ((static_cast<uint32_t>(r) + 127u) << 23));
  float y = __fadd_rn(static_cast<float>(2.0 / 3.0), __fmul_rn(static_cast<float>(1.0 / 3.0), m));
  for (int i = 0; i < 3; ++i) y = __fmul_rn(0.5f, __fadd_rn(y, __fdiv_rn(m, y)));
  float res = __fmul_rn(y, pow2(q));
  if (tiny) res = __fmul_rn(res, from_bits(0x39800000u));
  if (x == from_bits(0x7F800000u)) res = x;
  if (x == 0.0f) res = x;
  if (x < 0.0f) res = from_bits(kCanonicalNaN);
  return x == x ? res : from_bits(kCanonicalNaN);
}

// adam_m: b1*m + omb1*g; adam_v: b2*v + omb2*(g*g) (kind 0 / 1; constants as binary32 bits).
__global__ void adam_moment_kernel(const float* __restrict__ mv, const float* __restrict__ g, float* __restrict__ out,
                                   int64_t n, float b, float omb, int kind) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float gi = g[i];
  const float rhs = kind == 0 ? __fmul_rn(omb, gi) : __fmul_rn(omb, __fmul_rn(gi, gi));
  out[i] = canon(__fadd_rn(__fmul_rn(b, mv[i]), rhs));
}

// adamw: (p - lrwd*p) - lr * ((m/bc1) / (sqrt(v/bc2) + eps)). bc1, bc2, lrwd and lr are read from
// device memory (0-dim tensors): in a captured CUDA graph they change from one replay to the next.
__global__ void adamw_kernel(const float* __restrict__ p, const float* __restrict__ m, const float* __restrict__ v,
                             float* __restrict__ out, int64_t n, const float* bc1, const float* bc2,
                             const float* lrwd, const float* lr, float eps) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float mhat = __fdiv_rn(m[i], *bc1);
  const float vhat = __fdiv_rn(v[i], *bc2);
  const float upd = __fdiv_rn(mhat, __fadd_rn(sqrt_(vhat), eps));
  const float decayed = __fsub_rn(p[i], __fmul_rn(*lrwd, p[i]));
  out[i] = canon(__fsub_rn(decayed, __fmul_rn(*lr, upd)));
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

namespace {

float float_of_bits(int64_t b) {
  const uint32_t u = static_cast<uint32_t>(b);
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

void check_scalar(const at::Tensor& t, const at::Tensor& like, const char* what) {
  TORCH_CHECK(t.is_cuda() && t.scalar_type() == at::kFloat && t.numel() == 1 && t.device() == like.device(), what,
              ": want a one-element float32 tensor on the same device");
}

}  // namespace

// adam_m (kind 0) / adam_v (kind 1): b*mv + omb*g, or b*mv + omb*(g*g).
at::Tensor adam_moment(const at::Tensor& mv, const at::Tensor& g, int64_t b_bits, int64_t omb_bits, int64_t kind) {
  check_f32(mv, "adam moment");
  check_f32(g, "adam moment g");
  TORCH_CHECK(mv.sizes() == g.sizes(), "adam moment shapes");
  const c10::cuda::CUDAGuard guard(mv.device());
  at::Tensor out = at::empty_like(mv);
  const int64_t n = mv.numel();
  if (n == 0) return out;
  adam_moment_kernel<<<blocks(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      mv.data_ptr<float>(), g.data_ptr<float>(), out.data_ptr<float>(), n, float_of_bits(b_bits),
      float_of_bits(omb_bits), static_cast<int>(kind));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

// adamw with bc1, bc2, lrwd, lr as one-element device tensors and eps as binary32 bits.
at::Tensor adamw(const at::Tensor& p, const at::Tensor& m, const at::Tensor& v, const at::Tensor& bc1,
                 const at::Tensor& bc2, const at::Tensor& lrwd, const at::Tensor& lr, int64_t eps_bits) {
  check_f32(p, "adamw p");
  check_f32(m, "adamw m");
  check_f32(v, "adamw v");
  TORCH_CHECK(p.sizes() == m.sizes() && p.sizes() == v.sizes(), "adamw shapes");
  check_scalar(bc1, p, "adamw bc1");
  check_scalar(bc2, p, "adamw bc2");
  check_scalar(lrwd, p, "adamw lrwd");
  check_scalar(lr, p, "adamw lr");
  const c10::cuda::CUDAGuard guard(p.device());
  at::Tensor out = at::empty_like(p);
  const int64_t n = p.numel();
  if (n == 0) return out;
  adamw_kernel<<<blocks(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      p.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>(), n,
      bc1.data_ptr<float>(), bc2.data_ptr<float>(), lrwd.data_ptr<float>(), lr.data_ptr<float>(),
      float_of_bits(eps_bits));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
