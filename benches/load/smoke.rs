//! `--smoke`: a few-second run of every workload against a running tern (CI).

use crate::args::{Config, Workload};
use crate::output::report;
use crate::workloads::run;

/// Runs the smoke list against `addr`, printing a line per run; whether every run verified.
pub fn smoke(addr: &str) -> bool {
    let base = Config {
        addr: addr.to_string(),
        connections: 4,
        item_size: 200,
        count: 2000,
        pipeline: 8,
        label: "smoke".into(),
        ..Config::default()
    };
    let runs = [
        Config {
            workload: Workload::Produce,
            ..base.clone()
        },
        Config {
            workload: Workload::Consume,
            ..base.clone()
        },
        Config {
            workload: Workload::Mixed,
            ..base.clone()
        },
        Config {
            workload: Workload::Reliable,
            ..base.clone()
        },
        Config {
            workload: Workload::Reliable,
            pairs: true,
            pipeline: 4,
            ..base.clone()
        },
        Config {
            workload: Workload::Cursor,
            cursors: 3,
            count: 1000,
            ..base.clone()
        },
        Config {
            workload: Workload::Fanout,
            queues: Some(3),
            count: 500,
            ..base.clone()
        },
        Config {
            workload: Workload::Produce,
            connections: 1,
            pipeline: 1,
            count: 200,
            item_size: 4000,
            ..base.clone()
        },
    ];
    let mut ok = true;
    for cfg in &runs {
        ok &= report(&run(cfg));
    }
    ok
}
