//! SplitMix64, the PRNG shared by every language's harness (benches/WORKLOADS.md §1).

/// W4 sleep durations.
pub const TIMER_SEED: u64 = 0x5EED_0000_0000_0004;

/// The first W4 durations (ms) that every implementation must reproduce.
pub const TIMER_CHECK: [u64; 5] = [101, 147, 46, 125, 34];

/// SplitMix64 with 64-bit wrapping arithmetic.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// W4: `d[i] = 1 + next() % 200` milliseconds, one stream from `TIMER_SEED`.
pub fn timer_durations_ms(tasks: usize) -> Vec<u64> {
    let mut rng = SplitMix64::new(TIMER_SEED);
    (0..tasks).map(|_| 1 + rng.next() % 200).collect()
}

/// True when the first durations match the spec's check values (always
/// computed on a full-length prefix, whatever `tasks` a smoke test asked for).
pub fn timer_durations_check() -> bool {
    timer_durations_ms(TIMER_CHECK.len()) == TIMER_CHECK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_zero_check_values() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn kth_output_is_a_fresh_generator_at_seed_plus_k_gamma() {
        let seed = 0x5EED_0000_0000_0006u64;
        let mut r = SplitMix64::new(seed);
        for k in 0..10u64 {
            let mut fresh =
                SplitMix64::new(seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            assert_eq!(r.next(), fresh.next());
        }
    }

    #[test]
    fn timer_durations_match_spec() {
        assert!(timer_durations_check());
        let d = timer_durations_ms(100_000);
        assert_eq!(&d[..5], &TIMER_CHECK);
        assert!(d.iter().all(|&x| (1..=200).contains(&x)));
    }

    #[test]
    fn file_offsets_match_spec() {
        let mut r = SplitMix64::new(0x5EED_0000_0000_0006);
        let offs: Vec<u64> = (0..3).map(|_| (r.next() % 65536) * 4096).collect();
        assert_eq!(offs, [112_582_656, 14_123_008, 98_234_368]);
    }
}
