// RepOps CPU fast path: fused loops that run, per output element, exactly the canonical scalar program
// of an op (docs/REPOPS.md), instead of one torch pass per instruction.
//
// Bit-exactness rests on three things, and every function below keeps them:
//  * Each float32 + - * / is a separate C++ operation on `float`, compiled with -ffp-contract=off and
//    without -ffast-math: IEEE-754 binary32, round to nearest even, one rounding per operation, no
//    FMA, no reassociation, subnormals kept. The compiler may vectorise loops over independent output
//    elements (that changes no element's sequence of operations); it never reorders a reduction.
//  * Reductions follow protocol/repops/reduce.py: terms in c chunks of L consecutive terms, each chunk
//    summed from +0 in order, then the chunk sums added left to right (chunk 0 first). c and L are
//    computed by the Python side (reduce.chunking) and passed in, so the order is defined once.
//  * NaNs: float bits read as integers are canonicalised first (TorchBackend.bits), and every output
//    element is canonicalised (TorchBackend.finish).
//
// Threads split output elements only (at::parallel_for over rows); an element is always computed by
// one thread, start to end, so the thread count never changes a bit.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

// ----------------------------------------------------------------------------------------------------
// scalar helpers: the ISA instructions the kernels use
// ----------------------------------------------------------------------------------------------------

constexpr uint32_t kCanonicalNaN = 0x7FC00000u;

inline float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

inline uint32_t raw_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// Float bits as an integer register: NaN canonical (TorchBackend.bits).
inline uint32_t bits(float f) { return f != f ? kCanonicalNaN : raw_bits(f); }

// An op output: NaN canonical (TorchBackend.finish).
inline float canon(float f) { return f != f ? from_bits(kCanonicalNaN) : f; }

// FMIN / FMAX as the kernels define them: select(b < a, b, a) / select(a < b, b, a).
inline float fmin_(float a, float b) { return b < a ? b : a; }
inline float fmax_(float a, float b) { return a < b ? b : a; }

// 2**n from the exponent field: bits (n + 127) << 23 (int32 arithmetic mod 2^32).
inline float pow2(int32_t n) { return from_bits((static_cast<uint32_t>(n) + 127u) << 23); }

// F2I: round half to even, NaN -> 0, saturating at the int32 range (TorchBackend.f2i).
inline int32_t f2i(float x) {
  float r = std::nearbyint(x);  // default rounding mode: to nearest, ties to even
  if (r != r) r = 0.0f;
  if (r >= 2147483648.0f) return 0x7FFFFFFF;
  float c = r < -2147483648.0f ? -2147483648.0f : (r > 2147483520.0f ? 2147483520.0f : r);
  return static_cast<int32_t>(c);
}

// ----------------------------------------------------------------------------------------------------
// elementary functions (protocol/repops/fmath.py, instruction for instruction)
// ----------------------------------------------------------------------------------------------------

struct FmathConsts {
  float exp_lo, exp_hi, log2e, ln2_hi, ln2_lo;
  float exp_poly[8];
};

// Constants as fmath.py defines them (Python doubles rounded to binary32 / given as bit patterns).
const FmathConsts kF = {
    -104.0f, 89.0f, from_bits(0x3FB8AA3Bu), from_bits(0x3F317200u), from_bits(0x35BFBE8Eu),
    {static_cast<float>(1.0 / 5040.0), static_cast<float>(1.0 / 720.0), static_cast<float>(1.0 / 120.0),
     static_cast<float>(1.0 / 24.0), static_cast<float>(1.0 / 6.0), 0.5f, 1.0f, 1.0f},
};

inline float exp_(float x) {
  float xc = fmin_(fmax_(x, kF.exp_lo), kF.exp_hi);
  int32_t n = f2i(xc * kF.log2e);
  float nf = static_cast<float>(n);
  float r = xc - nf * kF.ln2_hi;
  r = r - nf * kF.ln2_lo;
  float p = kF.exp_poly[0];
  for (int i = 1; i < 8; ++i) p = kF.exp_poly[i] + p * r;
  int32_t n1 = n >> 1;  // arithmetic shift (SAR)
  int32_t n2 = static_cast<int32_t>(static_cast<uint32_t>(n) - static_cast<uint32_t>(n1));
  return (p * pow2(n1)) * pow2(n2);
}

inline float sqrt_(float x) {
  const bool tiny = x < from_bits(0x00800000u);  // 2^-126
  float xs = tiny ? x * 16777216.0f : x;         // 2^24
  uint32_t b = bits(xs);
  int32_t ee = static_cast<int32_t>(((b >> 23) & 0xFFu) - 127u);
  int32_t q = ee >> 1;
  int32_t r = static_cast<int32_t>(static_cast<uint32_t>(ee) - (static_cast<uint32_t>(q) << 1));
  float m = from_bits((b & 0x7FFFFFu) | ((static_cast<uint32_t>(r) + 127u) << 23));
  float y = static_cast<float>(2.0 / 3.0) + static_cast<float>(1.0 / 3.0) * m;
  for (int i = 0; i < 3; ++i) y = 0.5f * (y + m / y);
  float res = y * pow2(q);
  if (tiny) res = res * from_bits(0x39800000u);  // 2^-12
  const float inf = from_bits(0x7F800000u);
  if (x == inf) res = x;
  if (x == 0.0f) res = x;
  if (x < 0.0f) res = from_bits(kCanonicalNaN);
  return x == x ? res : from_bits(kCanonicalNaN);
}

// ----------------------------------------------------------------------------------------------------
// fixed-order dot products and column sums (reduce.fixed_sum / reduce.dot)
// ----------------------------------------------------------------------------------------------------

constexpr int64_t kRows = 4;   // output rows computed together (each B row is loaded once for them)
constexpr int64_t kCols = 64;  // output columns per tile (the accumulators stay in L1)

// out[g, i, j] = chunked sum over t of a[g, i, t] * b[g, t, j] (or of b[g, t, j] when a is null),
// then + bias[j] if given. a: (G, M, K), b: (G, K, N), out: (G, M, N), all contiguous.
void chunked_dot(const float* a, const float* b, const float* bias, float* out, int64_t G, int64_t M,
                 int64_t K, int64_t N, int64_t c, int64_t L) {
  const int64_t row_blocks = (M + kRows - 1) / kRows;
  at::parallel_for(0, G * row_blocks, 1, [&](int64_t begin, int64_t end) {
    float tot[kRows][kCols];
    float acc[kRows][kCols];
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t g = blk / row_blocks;
      const int64_t i0 = (blk % row_blocks) * kRows;
      const int64_t R = std::min(kRows, M - i0);
      const float* bg = b + g * K * N;
      const float* ag = a ? a + (g * M + i0) * K : nullptr;
      for (int64_t j0 = 0; j0 < N; j0 += kCols) {
        const int64_t J = std::min(kCols, N - j0);
        for (int64_t p = 0; p < c; ++p) {
          const int64_t t0 = p * L;
          const int64_t t1 = std::min(t0 + L, K);
          float(*s)[kCols] = p == 0 ? tot : acc;
          for (int64_t r = 0; r < R; ++r)
            for (int64_t jj = 0; jj < J; ++jj) s[r][jj] = 0.0f;
          for (int64_t t = t0; t < t1; ++t) {
            const float* brow = bg + t * N + j0;
            for (int64_t r = 0; r < R; ++r) {
              float* sr = s[r];
              if (ag) {
                const float av = ag[r * K + t];
                for (int64_t jj = 0; jj < J; ++jj) sr[jj] = sr[jj] + av * brow[jj];
              } else {
                for (int64_t jj = 0; jj < J; ++jj) sr[jj] = sr[jj] + brow[jj];
              }
            }
          }
          if (p > 0)
            for (int64_t r = 0; r < R; ++r)
              for (int64_t jj = 0; jj < J; ++jj) tot[r][jj] = tot[r][jj] + acc[r][jj];
        }
        for (int64_t r = 0; r < R; ++r) {
          float* orow = out + (g * M + i0 + r) * N + j0;
          if (bias)
            for (int64_t jj = 0; jj < J; ++jj) orow[jj] = canon(tot[r][jj] + bias[j0 + jj]);
          else
            for (int64_t jj = 0; jj < J; ++jj) orow[jj] = canon(tot[r][jj]);
        }
      }
    }
  });
}

void check_f32(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(),
              what, ": want a contiguous float32 CPU tensor");
}

}  // namespace

// a (G, M, K), b (G, K, N), bias (N,) or empty: the chunked dot product of matmul / linear.
at::Tensor dot(const at::Tensor& a, const at::Tensor& b, const at::Tensor& bias, int64_t c, int64_t L) {
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
  at::Tensor out = at::empty({G, M, N}, a.options());
  chunked_dot(a.data_ptr<float>(), b.data_ptr<float>(), bp, out.data_ptr<float>(), G, M, K, N, c, L);
  return out;
}

// x (K, N): the chunked sum of each column over the K rows (sum_rows).
at::Tensor colsum(const at::Tensor& x, int64_t c, int64_t L) {
  check_f32(x, "colsum x");
  TORCH_CHECK(x.dim() == 2, "colsum shape");
  const int64_t K = x.size(0), N = x.size(1);
  TORCH_CHECK(c >= 1 && L >= 1 && (c - 1) * L < K && c * L >= K, "colsum: bad chunking");
  at::Tensor out = at::empty({N}, x.options());
  chunked_dot(nullptr, x.data_ptr<float>(), nullptr, out.data_ptr<float>(), 1, 1, K, N, c, L);
  return out;
}

namespace {

// Runs f(i) -> float for every element of out, in parallel chunks, canonicalising NaNs.
template <typename F>
at::Tensor elementwise(const at::Tensor& like, F f) {
  at::Tensor out = at::empty_like(like, at::MemoryFormat::Contiguous);
  float* o = out.data_ptr<float>();
  at::parallel_for(0, out.numel(), 2048, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) o[i] = canon(f(i));
  });
  return out;
}

}  // namespace

// adam_m: b1*m + omb1*g (constants as binary32 bits).
at::Tensor adam_m(const at::Tensor& m, const at::Tensor& g, int64_t b1_bits, int64_t omb1_bits) {
  check_f32(m, "adam_m m");
  check_f32(g, "adam_m g");
  TORCH_CHECK(m.sizes() == g.sizes(), "adam_m shapes");
  const float b1 = from_bits(static_cast<uint32_t>(b1_bits)), omb1 = from_bits(static_cast<uint32_t>(omb1_bits));
  const float *mp = m.data_ptr<float>(), *gp = g.data_ptr<float>();
  return elementwise(m, [=](int64_t i) { return b1 * mp[i] + omb1 * gp[i]; });
}

// adam_v: b2*v + omb2*(g*g).
at::Tensor adam_v(const at::Tensor& v, const at::Tensor& g, int64_t b2_bits, int64_t omb2_bits) {
  check_f32(v, "adam_v v");
  check_f32(g, "adam_v g");
  TORCH_CHECK(v.sizes() == g.sizes(), "adam_v shapes");
  const float b2 = from_bits(static_cast<uint32_t>(b2_bits)), omb2 = from_bits(static_cast<uint32_t>(omb2_bits));
  const float *vp = v.data_ptr<float>(), *gp = g.data_ptr<float>();
  return elementwise(v, [=](int64_t i) {
    const float gg = gp[i] * gp[i];
    return b2 * vp[i] + omb2 * gg;
  });
}

// adamw: (p - lrwd*p) - lr * ((m/bc1) / (sqrt(v/bc2) + eps)).
at::Tensor adamw(const at::Tensor& p, const at::Tensor& m, const at::Tensor& v, int64_t bc1_bits,
                 int64_t bc2_bits, int64_t eps_bits, int64_t lrwd_bits, int64_t lr_bits) {
  check_f32(p, "adamw p");
  check_f32(m, "adamw m");
  check_f32(v, "adamw v");
  TORCH_CHECK(p.sizes() == m.sizes() && p.sizes() == v.sizes(), "adamw shapes");
  const float bc1 = from_bits(static_cast<uint32_t>(bc1_bits)), bc2 = from_bits(static_cast<uint32_t>(bc2_bits));
  const float eps = from_bits(static_cast<uint32_t>(eps_bits)), lrwd = from_bits(static_cast<uint32_t>(lrwd_bits));
  const float lr = from_bits(static_cast<uint32_t>(lr_bits));
  const float *pp = p.data_ptr<float>(), *mp = m.data_ptr<float>(), *vp = v.data_ptr<float>();
  return elementwise(p, [=](int64_t i) {
    const float mhat = mp[i] / bc1;
    const float vhat = vp[i] / bc2;
    const float upd = mhat / (sqrt_(vhat) + eps);
    const float decayed = pp[i] - lrwd * pp[i];
    return decayed - lr * upd;
  });
}

namespace {

constexpr double kGeluC = 0.044715;
constexpr double kGeluK = 0.7978845608028654;  // sqrt(2/pi)

// linalg._gelu_parts: x2 = x*x, e = exp(-2K * (x + C*(x2*x))), s = 1 / (1 + e).
struct GeluParts {
  float x2, e, s;
};

inline GeluParts gelu_parts(float x) {
  const float x2 = x * x;
  const float inner = x + static_cast<float>(kGeluC) * (x2 * x);
  const float e = exp_(static_cast<float>(-2.0 * kGeluK) * inner);
  return {x2, e, 1.0f / (1.0f + e)};
}

}  // namespace

at::Tensor gelu(const at::Tensor& x) {
  check_f32(x, "gelu x");
  const float* xp = x.data_ptr<float>();
  return elementwise(x, [=](int64_t i) { return xp[i] * gelu_parts(xp[i]).s; });
}

// dy * (s + (x * ((2*s) * (min(e, 2^100) * s))) * du), du = K * (1 + 3C * x2).
at::Tensor gelu_backward(const at::Tensor& x, const at::Tensor& dy) {
  check_f32(x, "gelu_backward x");
  check_f32(dy, "gelu_backward dy");
  TORCH_CHECK(x.sizes() == dy.sizes(), "gelu_backward shapes");
  const float *xp = x.data_ptr<float>(), *dp = dy.data_ptr<float>();
  return elementwise(x, [=](int64_t i) {
    const float xv = xp[i];
    const GeluParts g = gelu_parts(xv);
    const float du = static_cast<float>(kGeluK) * (1.0f + static_cast<float>(3.0 * kGeluC) * g.x2);
    const float ds = (2.0f * g.s) * (fmin_(g.e, from_bits(0x71800000u)) * g.s);  // 2^100
    return dp[i] * (g.s + (xv * ds) * du);
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("dot", &dot, "chunked fixed-order dot product (matmul / linear)");
  m.def("colsum", &colsum, "chunked fixed-order column sums (sum_rows)");
  m.def("adam_m", &adam_m, "AdamW first moment");
  m.def("adam_v", &adam_v, "AdamW second moment");
  m.def("adamw", &adamw, "AdamW parameter update");
  m.def("gelu", &gelu, "GELU (tanh form)");
  m.def("gelu_backward", &gelu_backward, "GELU backward");
}
