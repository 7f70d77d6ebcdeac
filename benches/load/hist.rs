//! Latency percentiles: a log-linear histogram, 128 sub-buckets per power of two (< 1 % error),
//! in nanoseconds.

pub const SUB: u32 = 7;

#[derive(Clone)]
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Hist {
    fn default() -> Hist {
        Hist {
            counts: vec![0; 64 << SUB],
            total: 0,
        }
    }
}

impl Hist {
    pub fn record(&mut self, ns: u64) {
        let idx = if ns < (1 << SUB) {
            ns as usize
        } else {
            let e = 63 - ns.leading_zeros();
            let shift = e - SUB;
            (((shift + 1) as usize) << SUB) + ((ns >> shift) as usize - (1 << SUB))
        };
        self.counts[idx] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The q-quantile in microseconds (middle of its bucket).
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (idx, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = if idx < (1 << SUB) {
                    (idx as f64, 1.0)
                } else {
                    let shift = (idx >> SUB) - 1;
                    let m = (idx & ((1 << SUB) - 1)) + (1 << SUB);
                    ((m << shift) as f64, (1u64 << shift) as f64)
                };
                return (low + width / 2.0) / 1000.0;
            }
        }
        0.0
    }
}
