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

// Only the headers needed (not <torch/extension.h>): the first build takes ~4x less time.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/utils/pybind.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

// Hot loops are compiled twice, for AVX2 and for the baseline ISA, and the CPU picks one at load time
// (GCC function multiversioning). Both run the same IEEE binary32 operations per element, only more
// elements side by side; "avx2" does not enable FMA, and -ffp-contract=off forbids contraction anyway.
// REPOPS_BASELINE_ONLY builds the baseline code alone (to test it on a machine that has AVX2).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(REPOPS_BASELINE_ONLY)
#define REPOPS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define REPOPS_CLONES
#endif

// Helpers on vectors are always inlined, so each clone compiles them for its own ISA (an out-of-line
// call would pass 32-byte vectors differently with and without AVX).
#define VINLINE inline __attribute__((always_inline))

namespace {

// Eight float32 lanes (GCC vector extension): each operator is the IEEE operation in every lane.
typedef float v8f __attribute__((vector_size(32)));

VINLINE v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

VINLINE void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }

// ----------------------------------------------------------------------------------------------------
// scalar helpers: the ISA instructions the kernels use
// ----------------------------------------------------------------------------------------------------

constexpr uint32_t kCanonicalNaN = 0x7FC00000u;

VINLINE float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

VINLINE uint32_t raw_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// Float bits as an integer register: NaN canonical (TorchBackend.bits).
VINLINE uint32_t bits(float f) { return f != f ? kCanonicalNaN : raw_bits(f); }

// An op output: NaN canonical (TorchBackend.finish).
VINLINE float canon(float f) { return f != f ? from_bits(kCanonicalNaN) : f; }

// FMIN / FMAX as the kernels define them: select(b < a, b, a) / select(a < b, b, a).
VINLINE float fmin_(float a, float b) { return b < a ? b : a; }
VINLINE float fmax_(float a, float b) { return a < b ? b : a; }

// 2**n from the exponent field: bits (n + 127) << 23 (int32 arithmetic mod 2^32).
VINLINE float pow2(int32_t n) { return from_bits((static_cast<uint32_t>(n) + 127u) << 23); }

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

// F2I for |y| < 2^22 or NaN, as exp needs it: adding and subtracting 1.5 * 2^23 rounds y to an
// integer, half to even (the default rounding mode), exactly as nearbyint; NaN -> 0 as in f2i.
VINLINE int32_t f2i_small(float y) {
  const float r = (y + 12582912.0f) - 12582912.0f;
  return r != r ? 0 : static_cast<int32_t>(r);
}

VINLINE float exp_(float x) {
  float xc = fmin_(fmax_(x, kF.exp_lo), kF.exp_hi);  // NaN stays NaN; else |xc * log2e| < 151
  int32_t n = f2i_small(xc * kF.log2e);
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

constexpr double kLogPoly[5] = {2.0 / 11.0, 2.0 / 9.0, 2.0 / 7.0, 2.0 / 5.0, 2.0 / 3.0};

inline float log_(float x) {
  const bool tiny = x < from_bits(0x00800000u);  // 2^-126
  float xs = tiny ? x * 33554432.0f : x;         // 2^25
  const uint32_t adj = tiny ? 25u : 0u;
  uint32_t b = bits(xs);
  int32_t e = static_cast<int32_t>((((b >> 23) & 0xFFu) - 127u) - adj);
  float m = from_bits((b & 0x7FFFFFu) | 0x3F800000u);
  const bool big = from_bits(0x3FB504F3u) < m;  // sqrt(2)
  if (big) m = m * 0.5f;
  e = static_cast<int32_t>(static_cast<uint32_t>(e) + (big ? 1u : 0u));
  const float f = m - 1.0f;
  const float s = f / (2.0f + f);
  const float z = s * s;
  float p = static_cast<float>(kLogPoly[0]);
  for (int i = 1; i < 5; ++i) p = static_cast<float>(kLogPoly[i]) + p * z;
  const float big_r = z * p;
  const float hfsq = (0.5f * f) * f;
  const float ef = static_cast<float>(e);
  const float t = s * (hfsq + big_r) + ef * from_bits(0x3717F7D1u);  // LN2_LO
  float res = ef * from_bits(0x3F317180u) - ((hfsq - t) - f);        // LN2_HI
  const float inf = from_bits(0x7F800000u);
  if (x == inf) res = x;
  if (x == 0.0f) res = -inf;
  if (x < 0.0f) res = from_bits(kCanonicalNaN);
  return x == x ? res : from_bits(kCanonicalNaN);
}

// Sum of x[0..n) in the chunked order (c chunks of L terms, each from +0, chunk sums left to right).
inline float csum(const float* x, int64_t n, int64_t c, int64_t L) {
  float tot = 0.0f;
  for (int64_t p = 0; p < c; ++p) {
    const int64_t t1 = std::min((p + 1) * L, n);
    float s = 0.0f;
    for (int64_t t = p * L; t < t1; ++t) s = s + x[t];
    tot = p == 0 ? s : tot + s;
  }
  return tot;
}

// Sum of a[t] * b[t] (each product rounded, then added) in the chunked order.
inline float cdot(const float* a, const float* b, int64_t n, int64_t c, int64_t L) {
  float tot = 0.0f;
  for (int64_t p = 0; p < c; ++p) {
    const int64_t t1 = std::min((p + 1) * L, n);
    float s = 0.0f;
    for (int64_t t = p * L; t < t1; ++t) s = s + a[t] * b[t];
    tot = p == 0 ? s : tot + s;
  }
  return tot;
}

// Row maximum as reduce.row_max's pairwise tree (FMAX of neighbours, an odd last value carried),
// in place in buf (n >= 1 values).
inline float tree_max(float* buf, int64_t n) {
  while (n > 1) {
    const int64_t half = n / 2;
    for (int64_t i = 0; i < half; ++i) buf[i] = fmax_(buf[2 * i], buf[2 * i + 1]);
    if (n % 2) buf[half] = buf[n - 1];
    n = half + n % 2;
  }
  return buf[0];
}

// ----------------------------------------------------------------------------------------------------
// eight lanes at once: exp and GELU as above, each lane the same instruction sequence
// ----------------------------------------------------------------------------------------------------

typedef int32_t v8i __attribute__((vector_size(32)));

VINLINE v8f splat(float x) { return v8f{x, x, x, x, x, x, x, x}; }
VINLINE v8i splati(int32_t x) { return v8i{x, x, x, x, x, x, x, x}; }

// SELECT(c, a, b) lane by lane (c: a comparison's all-ones / zero mask), bits copied.
VINLINE v8f sel(v8i c, v8f a, v8f b) {
  const v8i ai = reinterpret_cast<v8i>(a), bi = reinterpret_cast<v8i>(b);
  return reinterpret_cast<v8f>((ai & c) | (bi & ~c));
}

VINLINE v8f pow2v(v8i n) { return reinterpret_cast<v8f>((n + splati(127)) << 23); }

VINLINE v8f exp8(v8f x) {
  v8f xc = sel(x < splat(kF.exp_lo), splat(kF.exp_lo), x);  // FMAX(x, lo) = SELECT(x < lo, lo, x)
  xc = sel(splat(kF.exp_hi) < xc, splat(kF.exp_hi), xc);    // FMIN(xc, hi) = SELECT(hi < xc, hi, xc)
  const v8f y = xc * splat(kF.log2e);
  const v8f rr = (y + splat(12582912.0f)) - splat(12582912.0f);  // f2i_small
  const v8i n = (rr == rr) & __builtin_convertvector(rr, v8i);    // NaN -> 0
  const v8f nf = __builtin_convertvector(n, v8f);
  v8f r = xc - nf * splat(kF.ln2_hi);
  r = r - nf * splat(kF.ln2_lo);
  v8f p = splat(kF.exp_poly[0]);
  for (int i = 1; i < 8; ++i) p = splat(kF.exp_poly[i]) + p * r;
  const v8i n1 = n >> 1;
  const v8i n2 = n - n1;
  return (p * pow2v(n1)) * pow2v(n2);
}

VINLINE v8f canon8(v8f v) { return sel(v == v, v, splat(from_bits(kCanonicalNaN))); }

// ----------------------------------------------------------------------------------------------------
// fixed-order dot products and column sums (reduce.fixed_sum / reduce.dot)
// ----------------------------------------------------------------------------------------------------

constexpr int64_t kRows = 4;   // output rows computed together (each B row is loaded once for them)
constexpr int64_t kCols = 64;  // output columns per tile (the accumulators stay in L1)

// What happens to a finished sum before it is stored (attention scores: scale, then the causal mask).
struct Epilogue {
  const float* bias = nullptr;  // + bias[j]
  bool scaled = false;          // * scale
  float scale = 1.0f;
  bool causal = false;          // -inf where j > i
};

}  // namespace

// s[r][jj] = sum over t in [t0, t1), from +0 and in order, of a[r*K + t] * b[t*N + jj] (each product
// rounded, then added), for r < R, jj < J; b[t*N + jj] alone when a is null. Full blocks of 4 rows x
// 16 columns keep their 64 running sums in vector registers.
REPOPS_CLONES void chunk_sum(const float* a, int64_t K, const float* b, int64_t N, int64_t R, int64_t J,
                             int64_t t0, int64_t t1, float (*s)[64]) {
  int64_t j = 0;
  if (a && R == 4) {
    for (; j + 16 <= J; j += 16) {
      v8f acc[4][2] = {};  // +0 in every lane
      for (int64_t t = t0; t < t1; ++t) {
        const v8f b0 = load8(b + t * N + j), b1 = load8(b + t * N + j + 8);
        for (int r = 0; r < 4; ++r) {
          const float x = a[r * K + t];
          const v8f av = {x, x, x, x, x, x, x, x};
          acc[r][0] = acc[r][0] + av * b0;
          acc[r][1] = acc[r][1] + av * b1;
        }
      }
      for (int r = 0; r < 4; ++r) {
        store8(&s[r][j], acc[r][0]);
        store8(&s[r][j + 8], acc[r][1]);
      }
    }
  }
  for (int64_t r = 0; r < R; ++r)
    for (int64_t jj = j; jj < J; ++jj) s[r][jj] = 0.0f;
  for (int64_t t = t0; t < t1; ++t) {
    const float* brow = b + t * N;
    for (int64_t r = 0; r < R; ++r) {
      float* sr = s[r];
      if (a) {
        const float av = a[r * K + t];
        for (int64_t jj = j; jj < J; ++jj) sr[jj] = sr[jj] + av * brow[jj];
      } else {
        for (int64_t jj = j; jj < J; ++jj) sr[jj] = sr[jj] + brow[jj];
      }
    }
  }
}

namespace {

// out[g, i, j] = chunked sum over t of a[g, i, t] * b[g, t, j] (or of b[g, t, j] when a is null),
// then the epilogue. a: (G, M, K), b: (G, K, N), out: (G, M, N), all contiguous.
void chunked_dot(const float* a, const float* b, float* out, int64_t G, int64_t M, int64_t K, int64_t N,
                 int64_t c, int64_t L, const Epilogue& ep) {
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
          chunk_sum(ag, K, bg + j0, N, R, J, t0, t1, p == 0 ? tot : acc);
          if (p > 0)
            for (int64_t r = 0; r < R; ++r)
              for (int64_t jj = 0; jj < J; ++jj) tot[r][jj] = tot[r][jj] + acc[r][jj];
        }
        for (int64_t r = 0; r < R; ++r) {
          float* orow = out + (g * M + i0 + r) * N + j0;
          float* tr = tot[r];
          if (ep.bias)
            for (int64_t jj = 0; jj < J; ++jj) tr[jj] = tr[jj] + ep.bias[j0 + jj];
          if (ep.scaled)
            for (int64_t jj = 0; jj < J; ++jj) tr[jj] = tr[jj] * ep.scale;
          if (ep.causal)
            for (int64_t jj = 0; jj < J; ++jj)
              if (j0 + jj > i0 + r) tr[jj] = -std::numeric_limits<float>::infinity();
          for (int64_t jj = 0; jj < J; ++jj) orow[jj] = canon(tr[jj]);
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

// a (G, M, K), b (G, K, N), bias (N,) or empty: the chunked dot product of matmul / linear, then
// + bias, then * scale (scale_bits >= 0: binary32 bits), then -inf above the diagonal (causal).
at::Tensor dot(const at::Tensor& a, const at::Tensor& b, const at::Tensor& bias, int64_t c, int64_t L,
               int64_t scale_bits, bool causal) {
  check_f32(a, "dot a");
  check_f32(b, "dot b");
  TORCH_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1), "dot shapes");
  const int64_t G = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  TORCH_CHECK(c >= 1 && L >= 1 && (c - 1) * L < K && c * L >= K, "dot: bad chunking");
  Epilogue ep;
  if (bias.numel() > 0) {
    check_f32(bias, "dot bias");
    TORCH_CHECK(bias.numel() == N, "dot bias shape");
    ep.bias = bias.data_ptr<float>();
  }
  if (scale_bits >= 0) {
    ep.scaled = true;
    ep.scale = from_bits(static_cast<uint32_t>(scale_bits));
  }
  ep.causal = causal;
  at::Tensor out = at::empty({G, M, N}, a.options());
  chunked_dot(a.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr<float>(), G, M, K, N, c, L, ep);
  return out;
}

// x (K, N): the chunked sum of each column over the K rows (sum_rows).
at::Tensor colsum(const at::Tensor& x, int64_t c, int64_t L) {
  check_f32(x, "colsum x");
  TORCH_CHECK(x.dim() == 2, "colsum shape");
  const int64_t K = x.size(0), N = x.size(1);
  TORCH_CHECK(c >= 1 && L >= 1 && (c - 1) * L < K && c * L >= K, "colsum: bad chunking");
  at::Tensor out = at::empty({N}, x.options());
  chunked_dot(nullptr, x.data_ptr<float>(), out.data_ptr<float>(), 1, 1, K, N, c, L, Epilogue{});
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

VINLINE GeluParts gelu_parts(float x) {
  const float x2 = x * x;
  const float inner = x + static_cast<float>(kGeluC) * (x2 * x);
  const float e = exp_(static_cast<float>(-2.0 * kGeluK) * inner);
  return {x2, e, 1.0f / (1.0f + e)};
}

}  // namespace

// Lanes of GELU / its backward: gelu_parts on eight elements.
VINLINE void gelu_parts8(v8f x, v8f& x2, v8f& e, v8f& s) {
  x2 = x * x;
  const v8f inner = x + splat(static_cast<float>(kGeluC)) * (x2 * x);
  e = exp8(splat(static_cast<float>(-2.0 * kGeluK)) * inner);
  s = splat(1.0f) / (splat(1.0f) + e);
}

REPOPS_CLONES void gelu_block(const float* x, float* o, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v8f xv = load8(x + i);
    v8f x2, e, s;
    gelu_parts8(xv, x2, e, s);
    store8(o + i, canon8(xv * s));
  }
  for (; i < n; ++i) o[i] = canon(x[i] * gelu_parts(x[i]).s);
}

REPOPS_CLONES void gelu_backward_block(const float* x, const float* dy, float* o, int64_t n) {
  const float k = static_cast<float>(kGeluK), c3 = static_cast<float>(3.0 * kGeluC);
  const float cap = from_bits(0x71800000u);  // 2^100
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v8f xv = load8(x + i);
    v8f x2, e, s;
    gelu_parts8(xv, x2, e, s);
    const v8f du = splat(k) * (splat(1.0f) + splat(c3) * x2);
    const v8f emin = sel(splat(cap) < e, splat(cap), e);  // FMIN(e, cap)
    const v8f ds = (splat(2.0f) * s) * (emin * s);
    store8(o + i, canon8(load8(dy + i) * (s + (xv * ds) * du)));
  }
  for (; i < n; ++i) {
    const float xv = x[i];
    const GeluParts g = gelu_parts(xv);
    const float du = k * (1.0f + c3 * g.x2);
    const float ds = (2.0f * g.s) * (fmin_(g.e, cap) * g.s);
    o[i] = canon(dy[i] * (g.s + (xv * ds) * du));
  }
}

// Runs block(begin, count) over [0, n) in parallel pieces.
template <typename F>
void blocks(int64_t n, F block) {
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) { block(begin, end - begin); });
}

at::Tensor gelu(const at::Tensor& x) {
  check_f32(x, "gelu x");
  at::Tensor out = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  blocks(x.numel(), [&](int64_t b, int64_t n) { gelu_block(xp + b, op + b, n); });
  return out;
}

// dy * (s + (x * ((2*s) * (min(e, 2^100) * s))) * du), du = K * (1 + 3C * x2).
at::Tensor gelu_backward(const at::Tensor& x, const at::Tensor& dy) {
  check_f32(x, "gelu_backward x");
  check_f32(dy, "gelu_backward dy");
  TORCH_CHECK(x.sizes() == dy.sizes(), "gelu_backward shapes");
  at::Tensor out = at::empty_like(x);
  const float *xp = x.data_ptr<float>(), *dp = dy.data_ptr<float>();
  float* op = out.data_ptr<float>();
  blocks(x.numel(), [&](int64_t b, int64_t n) { gelu_backward_block(xp + b, dp + b, op + b, n); });
  return out;
}

// ----------------------------------------------------------------------------------------------------
// row ops: softmax family, cross-entropy, layer norm (one row per task; scratch per thread)
// ----------------------------------------------------------------------------------------------------

namespace {

void check_chunking(int64_t n, int64_t c, int64_t L) {
  TORCH_CHECK(c >= 1 && L >= 1 && (c - 1) * L < n && c * L >= n, "bad chunking");
}

// For each row r of an (R, N) problem, f(r, scratch) with a thread-local scratch of 2N floats.
template <typename F>
void for_rows(int64_t R, int64_t N, F f) {
  at::parallel_for(0, R, std::max<int64_t>(1, 4096 / std::max<int64_t>(N, 1)), [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(2 * static_cast<size_t>(N) + 1);
    for (int64_t r = begin; r < end; ++r) f(r, scratch.data());
  });
}

}  // namespace

// e[j] = exp(x[j] - m) for j < n.
REPOPS_CLONES void exp_sub_block(const float* x, float m, float* e, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) store8(e + j, exp8(load8(x + j) - splat(m)));
  for (; j < n; ++j) e[j] = exp_(x[j] - m);
}

namespace {

// m = row max (tree), e = exp(x - m) into e, s = chunked sum of e.
inline void softmax_parts(const float* x, int64_t N, int64_t c, int64_t L, float* e, float& m, float& s) {
  for (int64_t j = 0; j < N; ++j) e[j] = x[j];
  m = tree_max(e, N);
  exp_sub_block(x, m, e, N);
  s = csum(e, N, c, L);
}

}  // namespace

// softmax (kind 0): e / s; log_softmax (kind 1): (x - m) - log(s). x (R, N).
at::Tensor softmax(const at::Tensor& x, int64_t c, int64_t L, int64_t kind) {
  check_f32(x, "softmax x");
  const int64_t N = x.size(-1), R = x.numel() / std::max<int64_t>(N, 1);
  check_chunking(N, c, L);
  at::Tensor out = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for_rows(R, N, [&](int64_t r, float* e) {
    const float* xr = xp + r * N;
    float* orow = op + r * N;
    float m, s;
    softmax_parts(xr, N, c, L, e, m, s);
    if (kind == 0) {
      for (int64_t j = 0; j < N; ++j) orow[j] = canon(e[j] / s);
    } else {
      const float ls = log_(s);
      for (int64_t j = 0; j < N; ++j) orow[j] = canon((xr[j] - m) - ls);
    }
  });
  return out;
}

// softmax_backward: p * (dp - sum_t dp_t * p_t). p, dp (R, N).
at::Tensor softmax_backward(const at::Tensor& p, const at::Tensor& dp, int64_t c, int64_t L) {
  check_f32(p, "softmax_backward p");
  check_f32(dp, "softmax_backward dp");
  TORCH_CHECK(p.sizes() == dp.sizes(), "softmax_backward shapes");
  const int64_t N = p.size(-1), R = p.numel() / std::max<int64_t>(N, 1);
  check_chunking(N, c, L);
  at::Tensor out = at::empty_like(p);
  const float *pp = p.data_ptr<float>(), *dpp = dp.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for_rows(R, N, [&](int64_t r, float*) {
    const float *pr = pp + r * N, *dr = dpp + r * N;
    const float s = cdot(dr, pr, N, c, L);
    for (int64_t j = 0; j < N; ++j) op[r * N + j] = canon(pr[j] * (dr[j] - s));
  });
  return out;
}

// log_softmax_backward: dy - exp(logp) * sum_t dy_t.
at::Tensor log_softmax_backward(const at::Tensor& logp, const at::Tensor& dy, int64_t c, int64_t L) {
  check_f32(logp, "log_softmax_backward logp");
  check_f32(dy, "log_softmax_backward dy");
  TORCH_CHECK(logp.sizes() == dy.sizes(), "log_softmax_backward shapes");
  const int64_t N = logp.size(-1), R = logp.numel() / std::max<int64_t>(N, 1);
  check_chunking(N, c, L);
  at::Tensor out = at::empty_like(logp);
  const float *lp = logp.data_ptr<float>(), *dp = dy.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for_rows(R, N, [&](int64_t r, float*) {
    const float *lr = lp + r * N, *dr = dp + r * N;
    const float s = csum(dr, N, c, L);
    for (int64_t j = 0; j < N; ++j) op[r * N + j] = canon(dr[j] - exp_(lr[j]) * s);
  });
  return out;
}

// cross_entropy per row: (m + log(s)) - z[r, tgt[r]]; tgt int32, checked in range by the caller.
at::Tensor cross_entropy(const at::Tensor& z, const at::Tensor& tgt, int64_t c, int64_t L) {
  check_f32(z, "cross_entropy z");
  TORCH_CHECK(tgt.scalar_type() == at::kInt && tgt.is_contiguous() && z.dim() == 2 && tgt.numel() == z.size(0),
              "cross_entropy targets");
  const int64_t R = z.size(0), N = z.size(1);
  check_chunking(N, c, L);
  at::Tensor out = at::empty({R}, z.options());
  const float* zp = z.data_ptr<float>();
  const int32_t* tp = tgt.data_ptr<int32_t>();
  float* op = out.data_ptr<float>();
  for_rows(R, N, [&](int64_t r, float* e) {
    float m, s;
    softmax_parts(zp + r * N, N, c, L, e, m, s);
    op[r] = canon((m + log_(s)) - zp[r * N + tp[r]]);
  });
  return out;
}

// cross_entropy_backward: (tgt[r] == j ? p - 1 : p) * (dloss / batch), p = e / s.
at::Tensor cross_entropy_backward(const at::Tensor& z, const at::Tensor& tgt, const at::Tensor& dloss,
                                  int64_t batch_bits, int64_t c, int64_t L) {
  check_f32(z, "cross_entropy_backward z");
  check_f32(dloss, "cross_entropy_backward dloss");
  TORCH_CHECK(tgt.scalar_type() == at::kInt && tgt.is_contiguous() && z.dim() == 2 && tgt.numel() == z.size(0),
              "cross_entropy_backward targets");
  const int64_t R = z.size(0), N = z.size(1);
  check_chunking(N, c, L);
  const float g = dloss.data_ptr<float>()[0] / from_bits(static_cast<uint32_t>(batch_bits));
  at::Tensor out = at::empty_like(z);
  const float* zp = z.data_ptr<float>();
  const int32_t* tp = tgt.data_ptr<int32_t>();
  float* op = out.data_ptr<float>();
  for_rows(R, N, [&](int64_t r, float* e) {
    float m, s;
    softmax_parts(zp + r * N, N, c, L, e, m, s);
    for (int64_t j = 0; j < N; ++j) {
      const float p = e[j] / s;
      op[r * N + j] = canon((tp[r] == j ? p - 1.0f : p) * g);
    }
  });
  return out;
}

// layernorm_stats: [mu, rstd] per row, mu = sum(x)/n, var = sum(d*d)/n (d = x - mu),
// rstd = 1 / sqrt(var + eps). n_bits: float(N) as binary32.
at::Tensor layernorm_stats(const at::Tensor& x, int64_t n_bits, int64_t eps_bits, int64_t c, int64_t L) {
  check_f32(x, "layernorm_stats x");
  TORCH_CHECK(x.dim() == 2, "layernorm_stats shape");
  const int64_t R = x.size(0), N = x.size(1);
  check_chunking(N, c, L);
  const float n = from_bits(static_cast<uint32_t>(n_bits)), eps = from_bits(static_cast<uint32_t>(eps_bits));
  at::Tensor out = at::empty({R, 2}, x.options());
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for_rows(R, N, [&](int64_t r, float* d) {
    const float* xr = xp + r * N;
    const float mu = csum(xr, N, c, L) / n;
    for (int64_t j = 0; j < N; ++j) d[j] = xr[j] - mu;
    const float var = cdot(d, d, N, c, L) / n;
    op[2 * r] = canon(mu);
    op[2 * r + 1] = canon(1.0f / sqrt_(var + eps));
  });
  return out;
}

// layernorm_apply: ((x - mu) * rstd) * gamma + beta.
at::Tensor layernorm_apply(const at::Tensor& x, const at::Tensor& stats, const at::Tensor& gamma,
                           const at::Tensor& beta) {
  check_f32(x, "layernorm_apply x");
  check_f32(stats, "layernorm_apply stats");
  check_f32(gamma, "layernorm_apply gamma");
  check_f32(beta, "layernorm_apply beta");
  const int64_t R = x.size(0), N = x.size(1);
  TORCH_CHECK(stats.numel() == 2 * R && gamma.numel() == N && beta.numel() == N, "layernorm_apply shapes");
  at::Tensor out = at::empty_like(x);
  const float *xp = x.data_ptr<float>(), *sp = stats.data_ptr<float>();
  const float *gp = gamma.data_ptr<float>(), *bp = beta.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for_rows(R, N, [&](int64_t r, float*) {
    const float mu = sp[2 * r], rstd = sp[2 * r + 1];
    for (int64_t j = 0; j < N; ++j) op[r * N + j] = canon(((xp[r * N + j] - mu) * rstd) * gp[j] + bp[j]);
  });
  return out;
}

// layernorm_backward: xhat = (x - mu) * rstd, g = dy * gamma, a = sum(g)/n, b = sum(g*xhat)/n,
// dx = ((g - a) - xhat * b) * rstd.
at::Tensor layernorm_backward(const at::Tensor& x, const at::Tensor& stats, const at::Tensor& gamma,
                              const at::Tensor& dy, int64_t n_bits, int64_t c, int64_t L) {
  check_f32(x, "layernorm_backward x");
  check_f32(stats, "layernorm_backward stats");
  check_f32(gamma, "layernorm_backward gamma");
  check_f32(dy, "layernorm_backward dy");
  const int64_t R = x.size(0), N = x.size(1);
  TORCH_CHECK(stats.numel() == 2 * R && gamma.numel() == N && dy.sizes() == x.sizes(), "layernorm_backward shapes");
  check_chunking(N, c, L);
  const float n = from_bits(static_cast<uint32_t>(n_bits));
  at::Tensor out = at::empty_like(x);
  const float *xp = x.data_ptr<float>(), *sp = stats.data_ptr<float>();
  const float *gp = gamma.data_ptr<float>(), *dp = dy.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for_rows(R, N, [&](int64_t r, float* buf) {
    float* xhat = buf;
    float* g = buf + N;
    const float mu = sp[2 * r], rstd = sp[2 * r + 1];
    for (int64_t j = 0; j < N; ++j) {
      xhat[j] = (xp[r * N + j] - mu) * rstd;
      g[j] = dp[r * N + j] * gp[j];
    }
    const float a = csum(g, N, c, L) / n;
    const float b = cdot(g, xhat, N, c, L) / n;
    for (int64_t j = 0; j < N; ++j) op[r * N + j] = canon(((g[j] - a) - xhat[j] * b) * rstd);
  });
  return out;
}

// layernorm_dgamma: column sums over the rows of dy * xhat, chunked over the R rows.
at::Tensor layernorm_dgamma(const at::Tensor& x, const at::Tensor& stats, const at::Tensor& dy, int64_t c,
                            int64_t L) {
  check_f32(x, "layernorm_dgamma x");
  check_f32(stats, "layernorm_dgamma stats");
  check_f32(dy, "layernorm_dgamma dy");
  const int64_t R = x.size(0), N = x.size(1);
  TORCH_CHECK(stats.numel() == 2 * R && dy.sizes() == x.sizes(), "layernorm_dgamma shapes");
  check_chunking(R, c, L);
  // The products dy * xhat (each xhat rounded first), then their chunked column sums.
  at::Tensor prod = at::empty_like(x);
  const float *xp = x.data_ptr<float>(), *sp = stats.data_ptr<float>(), *dp = dy.data_ptr<float>();
  float* pp = prod.data_ptr<float>();
  for (int64_t r = 0; r < R; ++r) {
    const float mu = sp[2 * r], rstd = sp[2 * r + 1];
    for (int64_t j = 0; j < N; ++j) pp[r * N + j] = dp[r * N + j] * ((xp[r * N + j] - mu) * rstd);
  }
  at::Tensor out = at::empty({N}, x.options());
  chunked_dot(nullptr, pp, out.data_ptr<float>(), 1, 1, R, N, c, L, Epilogue{});
  return out;
}

// embedding_backward: out[v] = sum of dy[p] over positions p with ids[p] == v, in increasing p from +0.
at::Tensor embedding_backward(const at::Tensor& ids, const at::Tensor& dy, int64_t num_embeddings) {
  check_f32(dy, "embedding_backward dy");
  TORCH_CHECK(ids.scalar_type() == at::kInt && ids.is_contiguous() && dy.dim() == 2 && ids.numel() == dy.size(0),
              "embedding_backward shapes");
  const int64_t P = dy.size(0), D = dy.size(1);
  at::Tensor out = at::zeros({num_embeddings, D}, dy.options());
  const int32_t* ip = ids.data_ptr<int32_t>();
  const float* dp = dy.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for (int64_t p = 0; p < P; ++p) {
    TORCH_CHECK(ip[p] >= 0 && ip[p] < num_embeddings, "embedding_backward: id out of range");
    float* orow = op + static_cast<int64_t>(ip[p]) * D;
    const float* drow = dp + p * D;
    for (int64_t j = 0; j < D; ++j) orow[j] = orow[j] + drow[j];
  }
  for (int64_t i = 0; i < num_embeddings * D; ++i) op[i] = canon(op[i]);
  return out;
}

// mean: chunked sum of all n elements, then / n (n_bits: float(n) as binary32).
at::Tensor mean(const at::Tensor& x, int64_t n_bits, int64_t c, int64_t L) {
  check_f32(x, "mean x");
  const int64_t n = x.numel();
  check_chunking(n, c, L);
  at::Tensor out = at::empty({}, x.options());
  out.data_ptr<float>()[0] = canon(csum(x.data_ptr<float>(), n, c, L) / from_bits(static_cast<uint32_t>(n_bits)));
  return out;
}

// ----------------------------------------------------------------------------------------------------
// plain elementwise ops (b already broadcast to a's shape by the caller)
// ----------------------------------------------------------------------------------------------------

// kind 0: a + b, 1: a - b, 2: a * b, 3: SGD a - c*b, 4: relu_backward SELECT(0 < a, b, +0).
REPOPS_CLONES void binary_block(const float* a, const float* b, float* o, int64_t n, int64_t kind, float c) {
  switch (kind) {
    case 0:
      for (int64_t i = 0; i < n; ++i) o[i] = canon(a[i] + b[i]);
      break;
    case 1:
      for (int64_t i = 0; i < n; ++i) o[i] = canon(a[i] - b[i]);
      break;
    case 2:
      for (int64_t i = 0; i < n; ++i) o[i] = canon(a[i] * b[i]);
      break;
    case 3:
      for (int64_t i = 0; i < n; ++i) o[i] = canon(a[i] - c * b[i]);
      break;
    default:
      for (int64_t i = 0; i < n; ++i) o[i] = canon(0.0f < a[i] ? b[i] : 0.0f);
  }
}

// kind 0: x * c (scale), 1: relu FMAX(x, +0) = SELECT(x < +0, +0, x).
REPOPS_CLONES void unary_block(const float* x, float* o, int64_t n, int64_t kind, float c) {
  if (kind == 0)
    for (int64_t i = 0; i < n; ++i) o[i] = canon(x[i] * c);
  else
    for (int64_t i = 0; i < n; ++i) o[i] = canon(x[i] < 0.0f ? 0.0f : x[i]);
}

at::Tensor binary(const at::Tensor& a, const at::Tensor& b, int64_t kind, int64_t c_bits) {
  check_f32(a, "binary a");
  check_f32(b, "binary b");
  TORCH_CHECK(a.sizes() == b.sizes() && kind >= 0 && kind <= 4, "binary shapes");
  at::Tensor out = at::empty_like(a);
  const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
  const float c = from_bits(static_cast<uint32_t>(c_bits));
  float* op = out.data_ptr<float>();
  blocks(a.numel(), [&](int64_t s, int64_t n) { binary_block(ap + s, bp + s, op + s, n, kind, c); });
  return out;
}

at::Tensor unary(const at::Tensor& x, int64_t kind, int64_t c_bits) {
  check_f32(x, "unary x");
  TORCH_CHECK(kind >= 0 && kind <= 1, "unary kind");
  at::Tensor out = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  const float c = from_bits(static_cast<uint32_t>(c_bits));
  float* op = out.data_ptr<float>();
  blocks(x.numel(), [&](int64_t s, int64_t n) { unary_block(xp + s, op + s, n, kind, c); });
  return out;
}

// embedding: out[p, j] = table[ids[p], j] (ids checked in range by the caller).
at::Tensor embedding(const at::Tensor& ids, const at::Tensor& table) {
  check_f32(table, "embedding table");
  TORCH_CHECK(ids.scalar_type() == at::kInt && ids.is_contiguous() && table.dim() == 2, "embedding shapes");
  const int64_t P = ids.numel(), V = table.size(0), D = table.size(1);
  at::Tensor out = at::empty({P, D}, table.options());
  const int32_t* ip = ids.data_ptr<int32_t>();
  const float* tp = table.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for (int64_t p = 0; p < P; ++p) {
    TORCH_CHECK(ip[p] >= 0 && ip[p] < V, "embedding: id out of range");
    const float* row = tp + static_cast<int64_t>(ip[p]) * D;
    for (int64_t j = 0; j < D; ++j) op[p * D + j] = canon(row[j]);
  }
  return out;
}

// ----------------------------------------------------------------------------------------------------
// keccak-256 chunk roots for the commitment layer (protocol/commit/tensor.py): not RepOps arithmetic,
// but the hashing of every checkpoint, done here without the GIL so that it overlaps training.
// keccak-256 is Ethereum's (Keccak padding 0x01 ... 0x80, rate 136 bytes), the hash of pysha3's
// keccak_256; tests/test_commit_native.py checks both functions against pysha3 and the Python tree.
// ----------------------------------------------------------------------------------------------------

namespace {

constexpr uint64_t kKeccakRC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
constexpr size_t kKeccakRate = 136;

inline uint64_t rotl64(uint64_t x, int n) { return (x << n) | (x >> (64 - n)); }

// The Keccak-f[1600] permutation, unrolled (lane (x, y) is st[x + 5y]): theta, rho and pi, chi, iota.
void keccak_f(uint64_t st[25]) {
  uint64_t a00 = st[0], a10 = st[1], a20 = st[2], a30 = st[3], a40 = st[4],
           a01 = st[5], a11 = st[6], a21 = st[7], a31 = st[8], a41 = st[9],
           a02 = st[10], a12 = st[11], a22 = st[12], a32 = st[13], a42 = st[14],
           a03 = st[15], a13 = st[16], a23 = st[17], a33 = st[18], a43 = st[19],
           a04 = st[20], a14 = st[21], a24 = st[22], a34 = st[23], a44 = st[24];
  for (int round = 0; round < 24; ++round) {
    const uint64_t c0 = a00 ^ a01 ^ a02 ^ a03 ^ a04;
    const uint64_t c1 = a10 ^ a11 ^ a12 ^ a13 ^ a14;
    const uint64_t c2 = a20 ^ a21 ^ a22 ^ a23 ^ a24;
    const uint64_t c3 = a30 ^ a31 ^ a32 ^ a33 ^ a34;
    const uint64_t c4 = a40 ^ a41 ^ a42 ^ a43 ^ a44;
    const uint64_t d0 = c4 ^ rotl64(c1, 1);
    const uint64_t d1 = c0 ^ rotl64(c2, 1);
    const uint64_t d2 = c1 ^ rotl64(c3, 1);
    const uint64_t d3 = c2 ^ rotl64(c4, 1);
    const uint64_t d4 = c3 ^ rotl64(c0, 1);
    a00 ^= d0; a10 ^= d1; a20 ^= d2; a30 ^= d3; a40 ^= d4;
    a01 ^= d0; a11 ^= d1; a21 ^= d2; a31 ^= d3; a41 ^= d4;
    a02 ^= d0; a12 ^= d1; a22 ^= d2; a32 ^= d3; a42 ^= d4;
    a03 ^= d0; a13 ^= d1; a23 ^= d2; a33 ^= d3; a43 ^= d4;
    a04 ^= d0; a14 ^= d1; a24 ^= d2; a34 ^= d3; a44 ^= d4;
    const uint64_t b00 = a00;
    const uint64_t b13 = rotl64(a01, 36);
    const uint64_t b21 = rotl64(a02, 3);
    const uint64_t b34 = rotl64(a03, 41);
    const uint64_t b42 = rotl64(a04, 18);
    const uint64_t b02 = rotl64(a10, 1);
    const uint64_t b10 = rotl64(a11, 44);
    const uint64_t b23 = rotl64(a12, 10);
    const uint64_t b31 = rotl64(a13, 45);
    const uint64_t b44 = rotl64(a14, 2);
    const uint64_t b04 = rotl64(a20, 62);
    const uint64_t b12 = rotl64(a21, 6);
    const uint64_t b20 = rotl64(a22, 43);
    const uint64_t b33 = rotl64(a23, 15);
    const uint64_t b41 = rotl64(a24, 61);
    const uint64_t b01 = rotl64(a30, 28);
    const uint64_t b14 = rotl64(a31, 55);
    const uint64_t b22 = rotl64(a32, 25);
    const uint64_t b30 = rotl64(a33, 21);
    const uint64_t b43 = rotl64(a34, 56);
    const uint64_t b03 = rotl64(a40, 27);
    const uint64_t b11 = rotl64(a41, 20);
    const uint64_t b24 = rotl64(a42, 39);
    const uint64_t b32 = rotl64(a43, 8);
    const uint64_t b40 = rotl64(a44, 14);
    a00 = b00 ^ (~b10 & b20);
    a10 = b10 ^ (~b20 & b30);
    a20 = b20 ^ (~b30 & b40);
    a30 = b30 ^ (~b40 & b00);
    a40 = b40 ^ (~b00 & b10);
    a01 = b01 ^ (~b11 & b21);
    a11 = b11 ^ (~b21 & b31);
    a21 = b21 ^ (~b31 & b41);
    a31 = b31 ^ (~b41 & b01);
    a41 = b41 ^ (~b01 & b11);
    a02 = b02 ^ (~b12 & b22);
    a12 = b12 ^ (~b22 & b32);
    a22 = b22 ^ (~b32 & b42);
    a32 = b32 ^ (~b42 & b02);
    a42 = b42 ^ (~b02 & b12);
    a03 = b03 ^ (~b13 & b23);
    a13 = b13 ^ (~b23 & b33);
    a23 = b23 ^ (~b33 & b43);
    a33 = b33 ^ (~b43 & b03);
    a43 = b43 ^ (~b03 & b13);
    a04 = b04 ^ (~b14 & b24);
    a14 = b14 ^ (~b24 & b34);
    a24 = b24 ^ (~b34 & b44);
    a34 = b34 ^ (~b44 & b04);
    a44 = b44 ^ (~b04 & b14);
    a00 ^= kKeccakRC[round];
  }
  st[0] = a00; st[1] = a10; st[2] = a20; st[3] = a30; st[4] = a40;
  st[5] = a01; st[6] = a11; st[7] = a21; st[8] = a31; st[9] = a41;
  st[10] = a02; st[11] = a12; st[12] = a22; st[13] = a32; st[14] = a42;
  st[15] = a03; st[16] = a13; st[17] = a23; st[18] = a33; st[19] = a43;
  st[20] = a04; st[21] = a14; st[22] = a24; st[23] = a34; st[24] = a44;
}

inline void absorb(uint64_t st[25], const uint8_t* block) {
  for (size_t i = 0; i < kKeccakRate / 8; ++i) {
    uint64_t w;
    std::memcpy(&w, block + 8 * i, 8);  // lanes are little-endian (the supported machines are)
    st[i] ^= w;
  }
  keccak_f(st);
}

// keccak-256 of prefix (0 or 1 byte) || data.
void keccak256(int prefix, const uint8_t* data, size_t len, uint8_t out[32]) {
  uint64_t st[25] = {};
  uint8_t block[kKeccakRate];
  size_t fill = 0;
  if (prefix >= 0) block[fill++] = static_cast<uint8_t>(prefix);
  while (len > 0) {
    const size_t take = std::min(len, kKeccakRate - fill);
    std::memcpy(block + fill, data, take);
    fill += take;
    data += take;
    len -= take;
    if (fill == kKeccakRate) {
      absorb(st, block);
      fill = 0;
    }
  }
  std::memset(block + fill, 0, kKeccakRate - fill);
  block[fill] ^= 0x01;
  block[kKeccakRate - 1] ^= 0x80;
  absorb(st, block);
  std::memcpy(out, st, 32);
}

}  // namespace

// keccak-256 of data.
pybind11::bytes keccak_256(const std::string& data) {
  uint8_t out[32];
  {
    pybind11::gil_scoped_release nogil;
    keccak256(-1, reinterpret_cast<const uint8_t*>(data.data()), data.size(), out);
  }
  return pybind11::bytes(reinterpret_cast<const char*>(out), 32);
}

namespace {

// The RFC 9162 root of count leaf hashes held in level (32 bytes each; level is overwritten): nodes
// H(0x01 || left || right) level by level, an odd last node promoted unchanged.
void fold_root(std::vector<uint8_t>& level, size_t count, uint8_t out[32]) {
  if (count == 0) {
    keccak256(-1, nullptr, 0, out);
    return;
  }
  uint8_t pair[64];
  while (count > 1) {
    const size_t half = count / 2;
    for (size_t i = 0; i < half; ++i) {
      std::memcpy(pair, &level[64 * i], 64);
      keccak256(0x01, pair, 64, &level[32 * i]);
    }
    if (count % 2) std::memmove(&level[32 * half], &level[32 * (count - 1)], 32);
    count = half + count % 2;
  }
  std::memcpy(out, level.data(), 32);
}

// Root over the leaves H(0x00 || chunk) of the c-byte chunks of p[0..n).
void chunk_root_of(const uint8_t* p, size_t n, size_t c, uint8_t out[32]) {
  const size_t count = (n + c - 1) / c;
  std::vector<uint8_t> level(count * 32);
  for (size_t i = 0; i < count; ++i) keccak256(0x00, p + i * c, std::min(c, n - i * c), &level[32 * i]);
  fold_root(level, count, out);
}

}  // namespace

// RFC 9162 root over the leaves H(0x00 || chunk) of the chunk_bytes-long chunks of data (the last one
// shorter), nodes H(0x01 || left || right), an odd last node promoted; H("") when data is empty.
pybind11::bytes chunk_root(const std::string& data, int64_t chunk_bytes) {
  TORCH_CHECK(chunk_bytes > 0, "chunk_root: chunk_bytes must be positive");
  uint8_t root[32];
  {
    pybind11::gil_scoped_release nogil;
    chunk_root_of(reinterpret_cast<const uint8_t*>(data.data()), data.size(), static_cast<size_t>(chunk_bytes),
                  root);
  }
  return pybind11::bytes(reinterpret_cast<const char*>(root), 32);
}

// A training state's root (protocol/commit/state.py, tensor.py): for each tensor, its elements'
// bytes in the machine's (little-endian) order, its dtype code, element width (4 or 8) and shape;
// the id H(0x02 || code || ndim || dims (uint32, big-endian) || chunk root over the big-endian
// element bytes), and the RFC 9162 root over the ids (leaves H(0x00 || id)).
pybind11::bytes state_root(const std::vector<std::string>& data, const std::vector<int64_t>& codes,
                           const std::vector<int64_t>& widths, const std::vector<std::vector<int64_t>>& shapes,
                           int64_t chunk_bytes) {
  const size_t n = data.size();
  TORCH_CHECK(codes.size() == n && widths.size() == n && shapes.size() == n && chunk_bytes > 0,
              "state_root: one code, width and shape per tensor");
  for (size_t k = 0; k < n; ++k) {
    int64_t numel = 1;
    for (int64_t d : shapes[k]) {
      TORCH_CHECK(d >= 0 && d <= 0xFFFFFFFFLL, "state_root: dimension out of range");
      numel *= d;
    }
    TORCH_CHECK((widths[k] == 4 || widths[k] == 8) && codes[k] >= 0 && codes[k] < 256 && shapes[k].size() < 256 &&
                    static_cast<int64_t>(data[k].size()) == numel * widths[k],
                "state_root: tensor ", k, " does not match its width and shape");
  }
  uint8_t root[32];
  {
    pybind11::gil_scoped_release nogil;
    std::vector<uint8_t> leaves(32 * n), be, pre;
    for (size_t k = 0; k < n; ++k) {
      const std::string& d = data[k];
      const size_t w = static_cast<size_t>(widths[k]);
      be.resize(d.size());
      for (size_t i = 0; i < d.size(); i += w)
        for (size_t b = 0; b < w; ++b) be[i + b] = static_cast<uint8_t>(d[i + w - 1 - b]);
      pre.assign({static_cast<uint8_t>(codes[k]), static_cast<uint8_t>(shapes[k].size())});
      for (int64_t dim : shapes[k])
        for (int shift = 24; shift >= 0; shift -= 8) pre.push_back(static_cast<uint8_t>((dim >> shift) & 0xFF));
      pre.resize(pre.size() + 32);
      chunk_root_of(be.data(), be.size(), static_cast<size_t>(chunk_bytes), pre.data() + pre.size() - 32);
      uint8_t id[32];
      keccak256(0x02, pre.data(), pre.size(), id);
      keccak256(0x00, id, 32, &leaves[32 * k]);
    }
    fold_root(leaves, n, root);
  }
  return pybind11::bytes(reinterpret_cast<const char*>(root), 32);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // The loops only touch tensor memory: Python threads (e.g. a checkpoint commit) run meanwhile.
  const auto nogil = py::call_guard<py::gil_scoped_release>();
  m.def("dot", &dot, "chunked fixed-order dot product (matmul / linear)", nogil);
  m.def("colsum", &colsum, "chunked fixed-order column sums (sum_rows)", nogil);
  m.def("adam_m", &adam_m, "AdamW first moment", nogil);
  m.def("adam_v", &adam_v, "AdamW second moment", nogil);
  m.def("adamw", &adamw, "AdamW parameter update", nogil);
  m.def("gelu", &gelu, "GELU (tanh form)", nogil);
  m.def("gelu_backward", &gelu_backward, "GELU backward", nogil);
  m.def("softmax", &softmax, "softmax (kind 0) / log_softmax (kind 1) over the last dim", nogil);
  m.def("softmax_backward", &softmax_backward, "softmax backward", nogil);
  m.def("log_softmax_backward", &log_softmax_backward, "log_softmax backward", nogil);
  m.def("cross_entropy", &cross_entropy, "per-row cross-entropy", nogil);
  m.def("cross_entropy_backward", &cross_entropy_backward, "cross-entropy backward", nogil);
  m.def("layernorm_stats", &layernorm_stats, "layer norm statistics", nogil);
  m.def("layernorm_apply", &layernorm_apply, "layer norm apply", nogil);
  m.def("layernorm_backward", &layernorm_backward, "layer norm input gradient", nogil);
  m.def("layernorm_dgamma", &layernorm_dgamma, "layer norm gamma gradient", nogil);
  m.def("embedding_backward", &embedding_backward, "embedding table gradient", nogil);
  m.def("mean", &mean, "mean of all elements", nogil);
  m.def("binary", &binary, "add / sub / mul / sgd / relu_backward", nogil);
  m.def("unary", &unary, "scale / relu", nogil);
  m.def("embedding", &embedding, "embedding lookup", nogil);
  m.def("keccak_256", &keccak_256, "keccak-256 (releases the GIL while hashing)");
  m.def("chunk_root", &chunk_root, "RFC 9162 root of keccak-256 chunk leaves (releases the GIL)");
  m.def("state_root", &state_root, "training-state root over tensor ids (releases the GIL)");
}
