//! A small, fast, non-cryptographic hasher for pod-name maps.
//!
//! One decision builds a map from pod name to sample for every pod; with the
//! standard SipHash that map dominates the cost of a 1,000-pod decision. The
//! inputs come from the cluster the controller already trusts, so resistance to
//! hash flooding buys nothing here. The mixing step is the well-known FxHash
//! (rotate, xor, multiply by a large odd constant).

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Eight bytes at `at`, little-endian (zero when out of range, which callers avoid).
#[inline]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(src) = bytes.get(at..at + 8) {
        w.copy_from_slice(src);
    }
    u64::from_le_bytes(w)
}

/// The hasher state.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        if n >= 8 {
            let mut i = 0;
            while i + 8 <= n {
                self.add(word(bytes, i));
                i += 8;
            }
            if i < n {
                // Overlapping last word: no byte-by-byte tail through the stack
                // (that store-to-load round trip stalled every hash).
                self.add(word(bytes, n - 8));
            }
        } else {
            let mut w = 0u64;
            for (k, b) in bytes.iter().enumerate() {
                w |= u64::from(*b) << (8 * k);
            }
            self.add(w);
        }
        self.add(n as u64);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;
