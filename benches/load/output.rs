//! Output: one `key=value` line per run, and whether the run verified.

use crate::args::{Config, Target, Workload};
use crate::verify::{Check, Out};

/// The result of one run: what it did (`res`, `secs`), what the verification found (`check`),
/// and workload-specific `key=value` pairs (`extra`, each with a leading space).
pub struct Report {
    pub cfg: Config,
    pub secs: f64,
    pub res: Out,
    pub check: Check,
    pub extra: String,
}

impl Report {
    pub fn new(cfg: &Config, secs: f64, res: Out, check: Check, extra: String) -> Report {
        Report {
            cfg: cfg.clone(),
            secs,
            res,
            check,
            extra,
        }
    }

    /// Whether the run verified: nothing lost, duplicated, unexpected, corrupt, reordered, and
    /// no error.
    pub fn ok(&self) -> bool {
        self.check == Check::default()
            && self.res.errors == 0
            && self.res.corrupt == 0
            && self.res.order == 0
    }

    pub fn line(&self) -> String {
        let c = &self.cfg;
        let h = &self.res.hist;
        format!(
            "target={} label={} workload={}{} conns={} pipeline={} size={} ops={} secs={:.3} \
             ops/s={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1}{} misses={} errors={} lost={} \
             dup={} corrupt={} order={} unexpected={} verify={}",
            match c.target {
                Target::Tern => "tern",
                Target::Memcached => "memcached",
            },
            if c.label.is_empty() { "-" } else { &c.label },
            c.workload.name(),
            if c.workload == Workload::Reliable && c.pairs {
                "-pair"
            } else {
                ""
            },
            c.connections,
            c.pipeline,
            c.item_size,
            self.res.ops,
            self.secs,
            self.res.ops as f64 / self.secs.max(1e-9),
            h.quantile_us(0.50),
            h.quantile_us(0.99),
            h.quantile_us(0.999),
            self.extra,
            self.res.misses,
            self.res.errors,
            self.check.lost,
            self.check.dup,
            self.res.corrupt,
            self.res.order,
            self.check.unexpected,
            if self.ok() { "ok" } else { "FAILED" },
        )
    }
}

/// Prints the run's line (and its first error, on stderr); whether it verified.
pub fn report(r: &Report) -> bool {
    println!("{}", r.line());
    if let Some(e) = &r.res.first_error {
        eprintln!("load: first error: {e}");
    }
    r.ok()
}
