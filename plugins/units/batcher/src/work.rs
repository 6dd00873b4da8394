//! The batch job itself, independent of the plugin contract so that it can
//! be measured natively (the tuner's bench maps its response surface).
//!
//! A request is a batch of `items` keys drawn from a skewed (Zipf-like)
//! distribution over `distinct` keys. Each key's value is costly to derive
//! ([`derive`], a fixed number of integer-mixing rounds). Two knobs decide
//! how long the batch takes, and both are wrong at either extreme:
//!
//! - **`chunk_size`**: items are processed in chunks. Each chunk pays a fixed
//!   setup ([`CHUNK_SETUP_ROUNDS`]) and a sweep of the cache (expired
//!   entries are cleared at every chunk boundary), and within a chunk every
//!   item is checked against the chunk's earlier items for duplicates (a
//!   linear scan). Small chunks pay setup and sweeps often; large chunks pay
//!   a scan that grows with the chunk. Cost ≈ n/c·(S + k·w) + n·c/2·t.
//! - **`cache_entries`**: a direct-mapped cache of derived values. Too small
//!   and most items miss and are derived again; too large and every sweep
//!   walks more entries.
//!
//! The answer (a checksum of every item's value, and the item count) does
//! not depend on either knob: a change of knobs is safe to canary, and
//! replay compares outputs byte for byte.

/// Integer-mixing rounds to derive one key's value (a cache miss).
pub const DERIVE_ROUNDS: u32 = 300;
/// Integer-mixing rounds of a chunk's fixed setup.
pub const CHUNK_SETUP_ROUNDS: u32 = 1_500;

/// The knobs, as the unit reads them from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// Items per chunk, 1 to 4096.
    pub chunk_size: usize,
    /// Cache slots, 0 (no cache) to 65536.
    pub cache_entries: usize,
}

impl Knobs {
    /// The values the unit ships with: one item per chunk (every item pays
    /// a chunk's setup and sweep) and a cache too small: far from the best.
    pub const DEFAULT: Knobs = Knobs { chunk_size: 1, cache_entries: 64 };
    /// Bounds of `chunk_size`.
    pub const CHUNK_BOUNDS: (usize, usize) = (1, 4096);
    /// Bounds of `cache_entries`.
    pub const CACHE_BOUNDS: (usize, usize) = (0, 65_536);
}

/// What one batch did. `checksum` and `items` are the answer; `hits`,
/// `chunks` and `work` describe how it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub checksum: u64,
    pub items: u64,
    pub hits: u64,
    pub chunks: u64,
}

/// SplitMix64's finaliser: a cheap, well-mixed step.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Integer-mixing rounds of one duplicate check (within a chunk).
pub const SCAN_ROUNDS: u32 = 6;

/// Whether two keys are the same, by comparing their fingerprints (what a
/// real job would do with records too large to compare whole).
fn same(a: u64, b: u64) -> bool {
    let (mut fa, mut fb) = (a, b);
    for _ in 0..SCAN_ROUNDS {
        fa = mix(fa);
        fb = mix(fb);
    }
    fa == fb
}

/// The costly value of `key`.
pub fn derive(key: u64) -> u64 {
    let mut v = key;
    for _ in 0..DERIVE_ROUNDS {
        v = mix(v);
    }
    v
}

/// The batch's keys: `items` draws over `distinct` keys from `seed`, skewed
/// so that low keys are frequent (the square of a uniform draw).
pub fn keys(items: usize, distinct: u64, seed: u64) -> Vec<u64> {
    let mut state = seed;
    (0..items)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let u = (mix(state) >> 11) as f64 / (1u64 << 53) as f64;
            ((u * u) * distinct as f64) as u64
        })
        .collect()
}

/// Process `keys` with `knobs`.
pub fn process(keys: &[u64], knobs: Knobs) -> Outcome {
    let chunk_size = knobs.chunk_size.clamp(Knobs::CHUNK_BOUNDS.0, Knobs::CHUNK_BOUNDS.1);
    let slots = knobs.cache_entries.min(Knobs::CACHE_BOUNDS.1);
    // (key + 1, value); 0 marks an empty slot.
    let mut cache: Vec<(u64, u64)> = vec![(0, 0); slots];
    let mut out = Outcome { items: keys.len() as u64, ..Outcome::default() };
    let mut generation = 0u64;
    for chunk in keys.chunks(chunk_size) {
        out.chunks += 1;
        generation = generation.wrapping_add(1);
        // The chunk's setup.
        let mut setup = generation;
        for _ in 0..CHUNK_SETUP_ROUNDS {
            setup = mix(setup);
        }
        // The sweep: entries whose tag falls in this generation's eighth
        // expire (the cache is kept fresh, at a cost per entry).
        for slot in cache.iter_mut() {
            if slot.0 != 0 && (slot.0 ^ setup) & 7 == 0 {
                *slot = (0, 0);
            }
        }
        for (i, &key) in chunk.iter().enumerate() {
            // Duplicates within the chunk are counted once per occurrence
            // either way; the scan is the cost a large chunk brings.
            std::hint::black_box(chunk[..i].iter().any(|&earlier| same(earlier, key)));
            let value = if slots == 0 {
                derive(key)
            } else {
                let slot = (mix(key) % slots as u64) as usize;
                if cache[slot].0 == key + 1 {
                    out.hits += 1;
                    cache[slot].1
                } else {
                    let v = derive(key);
                    cache[slot] = (key + 1, v);
                    v
                }
            };
            out.checksum = out.checksum.wrapping_add(value);
        }
        std::hint::black_box(setup);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The knobs change the cost, never the answer.
    #[test]
    fn the_answer_does_not_depend_on_the_knobs() {
        let keys = keys(3_000, 1_000, 7);
        let reference = process(&keys, Knobs { chunk_size: 1, cache_entries: 0 });
        for chunk_size in [1, 7, 64, 4096] {
            for cache_entries in [0, 1, 100, 65_536] {
                let out = process(&keys, Knobs { chunk_size, cache_entries });
                assert_eq!((out.checksum, out.items), (reference.checksum, reference.items));
            }
        }
    }

    /// A bigger cache hits more; bigger chunks make fewer of them.
    #[test]
    fn the_knobs_move_what_they_should() {
        let keys = keys(4_000, 2_000, 3);
        let small = process(&keys, Knobs { chunk_size: 64, cache_entries: 16 });
        let large = process(&keys, Knobs { chunk_size: 64, cache_entries: 8_192 });
        assert!(large.hits > 2 * small.hits, "{small:?} vs {large:?}");
        assert_eq!(process(&keys, Knobs { chunk_size: 100, cache_entries: 0 }).chunks, 40);
    }
}
