//! How deeply valid JSON text nests arrays and objects, checked 64 bytes at a time.
//!
//! serde_json skips a borrowed raw value without its recursion limit, so the scanner checks depth
//! separately. A byte-by-byte walk costs about as much as the parse itself; this one classifies a
//! 64-byte block at once into bit masks (AVX2 where the processor has it, else SSE2 on x86_64,
//! NEON on aarch64 — both baseline — and plain Rust elsewhere), finds the bytes inside strings with a running
//! XOR of the quote bits, and only follows brackets one by one when a block could cross the limit.
//! Blocks with a backslash (rare in audit data) are walked byte by byte, which keeps escapes
//! simple and exact. [`exceeds_bytewise`] is the reference the fast path is tested against.

/// Which bytes of a 64-byte block are `"`, `\`, `{`/`[` and `}`/`]`, one bit per byte.
#[derive(Default, Clone, Copy)]
struct BlockMasks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

#[cfg(target_arch = "x86_64")]
fn classify(block: &[u8; 64]) -> BlockMasks {
    use std::arch::x86_64::*;
    // SSE2 is part of the x86_64 baseline, so no runtime detection is needed.
    unsafe {
        let mut m = BlockMasks::default();
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        // `{` 0x7B and `[` 0x5B differ only in bit 0x20, as do `}` 0x7D and `]` 0x5D.
        let case = _mm_set1_epi8(0x20);
        let open = _mm_set1_epi8(b'{' as i8);
        let close = _mm_set1_epi8(b'}' as i8);
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k) as *const __m128i);
            let folded = _mm_or_si128(v, case);
            let bits = |x: __m128i| (_mm_movemask_epi8(x) as u32 as u64) << (16 * k);
            m.quote |= bits(_mm_cmpeq_epi8(v, quote));
            m.backslash |= bits(_mm_cmpeq_epi8(v, backslash));
            m.open |= bits(_mm_cmpeq_epi8(folded, open));
            m.close |= bits(_mm_cmpeq_epi8(folded, close));
        }
        m
    }
}

#[cfg(target_arch = "aarch64")]
fn classify(block: &[u8; 64]) -> BlockMasks {
    use std::arch::aarch64::*;
    // NEON is part of the aarch64 baseline. NEON has no movemask: weight each lane by its bit
    // and add pairwise three times (the simdjson technique).
    unsafe {
        let weights: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
        let w = vld1q_u8(weights.as_ptr());
        let v = [vld1q_u8(block.as_ptr()), vld1q_u8(block.as_ptr().add(16)), vld1q_u8(block.as_ptr().add(32)), vld1q_u8(block.as_ptr().add(48))];
        let mask = |f: &dyn Fn(uint8x16_t) -> uint8x16_t| -> u64 {
            let t0 = vandq_u8(f(v[0]), w);
            let t1 = vandq_u8(f(v[1]), w);
            let t2 = vandq_u8(f(v[2]), w);
            let t3 = vandq_u8(f(v[3]), w);
            let s = vpaddq_u8(vpaddq_u8(t0, t1), vpaddq_u8(t2, t3));
            let s = vpaddq_u8(s, s);
            vgetq_lane_u64(vreinterpretq_u64_u8(s), 0)
        };
        let case = vdupq_n_u8(0x20);
        BlockMasks {
            quote: mask(&|x| vceqq_u8(x, vdupq_n_u8(b'"'))),
            backslash: mask(&|x| vceqq_u8(x, vdupq_n_u8(b'\\'))),
            open: mask(&|x| vceqq_u8(vorrq_u8(x, case), vdupq_n_u8(b'{'))),
            close: mask(&|x| vceqq_u8(vorrq_u8(x, case), vdupq_n_u8(b'}'))),
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn classify(block: &[u8; 64]) -> BlockMasks {
    let mut m = BlockMasks::default();
    for (j, &b) in block.iter().enumerate() {
        m.quote |= u64::from(b == b'"') << j;
        m.backslash |= u64::from(b == b'\\') << j;
        m.open |= u64::from(b | 0x20 == b'{') << j;
        m.close |= u64::from(b | 0x20 == b'}') << j;
    }
    m
}

/// Walking state carried from byte to byte (and block to block).
#[derive(Clone, Copy, Default)]
struct Walk {
    depth: usize,
    in_string: bool,
    /// The previous byte was a backslash inside a string.
    escaped: bool,
}

impl Walk {
    /// Byte by byte; false when the limit is exceeded.
    fn bytes(&mut self, text: &[u8], limit: usize) -> bool {
        for &b in text {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => {
                        self.depth += 1;
                        if self.depth > limit {
                            return false;
                        }
                    }
                    b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
        true
    }
}

/// The same masks with AVX2, 32 bytes per instruction, where the processor has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn classify_avx2(block: &[u8; 64]) -> BlockMasks {
    use std::arch::x86_64::*;
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let case = _mm256_set1_epi8(0x20);
    let open = _mm256_set1_epi8(b'{' as i8);
    let close = _mm256_set1_epi8(b'}' as i8);
    let mut m = BlockMasks::default();
    for k in 0..2 {
        // SAFETY: `block` has 64 bytes; unaligned loads of 32 at offsets 0 and 32.
        let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(32 * k) as *const __m256i) };
        let folded = _mm256_or_si256(v, case);
        let bits = |x: __m256i| (_mm256_movemask_epi8(x) as u32 as u64) << (32 * k);
        m.quote |= bits(_mm256_cmpeq_epi8(v, quote));
        m.backslash |= bits(_mm256_cmpeq_epi8(v, backslash));
        m.open |= bits(_mm256_cmpeq_epi8(folded, open));
        m.close |= bits(_mm256_cmpeq_epi8(folded, close));
    }
    m
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn exceeds_avx2(text: &[u8], limit: usize) -> bool {
    // SAFETY: only called after checking that the processor has AVX2.
    walk_blocks(text, limit, |block| unsafe { classify_avx2(block) })
}

/// True when valid JSON `text` nests arrays and objects deeper than `limit`.
pub fn exceeds(text: &[u8], limit: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2.
        return unsafe { exceeds_avx2(text, limit) };
    }
    walk_blocks(text, limit, classify)
}

#[inline(always)]
fn walk_blocks(text: &[u8], limit: usize, classify: impl Fn(&[u8; 64]) -> BlockMasks) -> bool {
    let mut walk = Walk::default();
    let mut blocks = text.chunks_exact(64);
    for chunk in &mut blocks {
        let block: &[u8; 64] = chunk.try_into().expect("chunks_exact gives 64 bytes");
        let m = classify(block);
        if m.backslash != 0 || walk.escaped {
            // Escapes are rare in audit data; such a block is walked byte by byte.
            if !walk.bytes(block, limit) {
                return true;
            }
            continue;
        }
        // Bits inside strings: a running XOR of the quote bits (a quote opens or closes).
        let mut strings = m.quote;
        for shift in [1, 2, 4, 8, 16, 32] {
            strings ^= strings << shift;
        }
        if walk.in_string {
            strings = !strings;
        }
        let open = m.open & !strings;
        let close = m.close & !strings;
        let (opens, closes) = (open.count_ones() as usize, close.count_ones() as usize);
        if walk.depth + opens > limit || closes > walk.depth {
            // Could exceed within this block, or close below zero (only in text that is not
            // JSON; handled like the bytewise walk): follow the brackets in order.
            let mut bits = open | close;
            while bits != 0 {
                let j = bits.trailing_zeros();
                if open >> j & 1 == 1 {
                    walk.depth += 1;
                    if walk.depth > limit {
                        return true;
                    }
                } else {
                    walk.depth = walk.depth.saturating_sub(1);
                }
                bits &= bits - 1;
            }
        } else {
            walk.depth = walk.depth + opens - closes;
        }
        walk.in_string = strings >> 63 == 1;
    }
    !walk.bytes(blocks.remainder(), limit)
}

/// The byte-by-byte reference: the same answer as [`exceeds`], slower.
pub fn exceeds_bytewise(text: &[u8], limit: usize) -> bool {
    !Walk::default().bytes(text, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn counts_arrays_and_objects_outside_strings() {
        assert!(!exceeds(nested(128).as_bytes(), 128));
        assert!(exceeds(nested(129).as_bytes(), 128));
        let objects = format!("{}1{}", "{\"a\":".repeat(70), "}".repeat(70));
        assert!(!exceeds(objects.as_bytes(), 70));
        assert!(exceeds(objects.as_bytes(), 69));
        // brackets in strings do not count, across block boundaries too
        let in_string = format!("[\"{}\"]", "[{".repeat(500));
        assert!(!exceeds(in_string.as_bytes(), 1));
        // an escaped quote does not end a string
        let escaped = format!("[\"\\\"{}\"]", "[".repeat(300));
        assert!(!exceeds(escaped.as_bytes(), 1));
        let escaped_backslash = format!("[\"\\\\\"{}{}", "[".repeat(3), "]".repeat(4));
        assert!(exceeds(escaped_backslash.as_bytes(), 3));
    }

    #[test]
    fn the_fast_path_agrees_with_the_bytewise_walk() {
        // Random texts over the characters that matter, at lengths around block boundaries.
        let alphabet = b"[[{{]}\\\"\"a ,:";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 300) as usize;
            let text: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            for limit in [0, 1, 3, 8, 40] {
                let want = exceeds_bytewise(&text, limit);
                assert_eq!(exceeds(&text, limit), want, "{:?} limit {limit}", String::from_utf8_lossy(&text));
                // the baseline path too, where the machine has AVX2
                assert_eq!(walk_blocks(&text, limit, classify), want, "baseline path, limit {limit}");
            }
        }
    }
}
