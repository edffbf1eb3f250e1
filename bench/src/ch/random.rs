//! The random values TPC-C prescribes (clause 4.3.2): uniform ranges,
//! NURand's skewed customer and item choices, the syllable last names, and
//! alphanumeric and numeric strings of a given length range.

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;

const SYLLABLES: [&str; 10] = [
    "BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING",
];

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The constants C of NURand, drawn once per database and shared by loader
/// and workers (clause 2.1.6).
#[derive(Debug, Clone, Copy)]
pub struct NuRandC {
    pub last: u32,
    pub c_id: u32,
    pub i_id: u32,
}

/// A TPC-C random source.
#[derive(Debug)]
pub struct TpccRng {
    rng: SmallRng,
    c: NuRandC,
}

impl TpccRng {
    pub fn new(seed: u64, c: NuRandC) -> TpccRng {
        TpccRng {
            rng: SmallRng::seed_from_u64(seed),
            c,
        }
    }

    pub fn constants(seed: u64) -> NuRandC {
        let mut rng = SmallRng::seed_from_u64(seed);
        NuRandC {
            last: rng.random_range(0..=255),
            c_id: rng.random_range(0..=1023),
            i_id: rng.random_range(0..=8191),
        }
    }

    /// A uniform integer in `lo..=hi`.
    pub fn uniform(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u32) -> bool {
        self.rng.random_range(0..100) < percent
    }

    fn nurand(&mut self, a: i64, c: i64, lo: i64, hi: i64) -> i64 {
        (((self.uniform(0, a) | self.uniform(lo, hi)) + c) % (hi - lo + 1)) + lo
    }

    /// A customer id, skewed as NURand(1023, 1, 3000).
    pub fn customer_id(&mut self) -> i64 {
        let c = i64::from(self.c.c_id);
        self.nurand(1023, c, 1, 3000)
    }

    /// An item id, skewed as NURand(8191, 1, 100000).
    pub fn item_id(&mut self) -> i64 {
        let c = i64::from(self.c.i_id);
        self.nurand(8191, c, 1, 100_000)
    }

    /// A last name for a lookup, skewed as NURand(255, 0, 999).
    pub fn last_name(&mut self) -> String {
        let c = i64::from(self.c.last);
        last_name(self.nurand(255, c, 0, 999))
    }

    /// A string of `lo..=hi` random letters and digits.
    pub fn alnum(&mut self, lo: usize, hi: usize) -> String {
        let len = self.rng.random_range(lo..=hi);
        (0..len)
            .map(|_| char::from(ALNUM[self.rng.random_range(0..ALNUM.len())]))
            .collect()
    }

    /// A string of `len` random digits.
    pub fn digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10u8)))
            .collect()
    }

    /// Two random upper-case letters (a state), as CH-benCHmark's nation
    /// mapping reads the first of them.
    pub fn state(&mut self) -> String {
        (0..2)
            .map(|_| char::from(b'A' + self.rng.random_range(0..26u8)))
            .collect()
    }

    /// A zip code: four random digits and "11111".
    pub fn zip(&mut self) -> String {
        format!("{}11111", self.digits(4))
    }

    /// Item or stock data: 26–50 characters, 10% of them holding "ORIGINAL".
    pub fn data_with_original(&mut self) -> String {
        let mut data = self.alnum(26, 50);
        if self.percent(10) {
            let at = self.rng.random_range(0..=data.len() - 8);
            data.replace_range(at..at + 8, "ORIGINAL");
        }
        data
    }

    /// Shuffles `items` in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        use rand::seq::SliceRandom;
        items.shuffle(&mut self.rng);
    }

    /// A fixed-point amount in `lo..=hi` hundredths, as a decimal literal.
    pub fn money(&mut self, lo: i64, hi: i64) -> String {
        cents(self.uniform(lo, hi))
    }
}

/// The last name of number `n` (0..=999): three syllables, one per digit.
pub fn last_name(n: i64) -> String {
    let n = n.clamp(0, 999) as usize;
    [n / 100, (n / 10) % 10, n % 10]
        .iter()
        .map(|&d| SYLLABLES[d])
        .collect()
}

/// `n` hundredths as a decimal literal (`-1234` → `-12.34`).
pub fn cents(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", n.abs() / 100, n.abs() % 100)
}

/// `n` ten-thousandths as a decimal literal (`1234` → `0.1234`).
pub fn basis(n: i64) -> String {
    format!("{}.{:04}", n / 10_000, n % 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_names_follow_the_syllables() {
        assert_eq!(last_name(0), "BARBARBAR");
        assert_eq!(last_name(371), "PRICALLYOUGHT");
        assert_eq!(last_name(999), "EINGEINGEING");
    }

    #[test]
    fn nurand_stays_in_range() {
        let mut rng = TpccRng::new(7, TpccRng::constants(1));
        for _ in 0..10_000 {
            assert!((1..=3000).contains(&rng.customer_id()));
            assert!((1..=100_000).contains(&rng.item_id()));
        }
    }

    #[test]
    fn amounts_are_decimal_literals() {
        assert_eq!(cents(-1000), "-10.00");
        assert_eq!(cents(5), "0.05");
        assert_eq!(basis(1234), "0.1234");
        let mut rng = TpccRng::new(3, TpccRng::constants(3));
        let originals = (0..1000)
            .filter(|_| rng.data_with_original().contains("ORIGINAL"))
            .count();
        assert!((50..200).contains(&originals), "{originals}");
    }
}
