//! End-to-end load tool: drives a running tern (or memcached, set/get only) over TCP with the
//! memcache text protocol, measures throughput and per-request latency, and verifies that nothing
//! was lost, duplicated, reordered or corrupted.
//!
//! ```text
//! cargo bench --bench load -- --target tern|memcached --addr 127.0.0.1:PORT \
//!     --workload produce|consume|mixed|reliable|cursor|fanout --connections N \
//!     --item-size BYTES (--count N | --duration SECS) --pipeline DEPTH [--cursors R] [--queues Q]
//! cargo bench --bench load -- --smoke --addr 127.0.0.1:PORT      # CI: a few-second check
//! ```
//!
//! One OS thread and one blocking `TcpStream` per connection. Each connection writes a batch of
//! DEPTH commands in one `write`, then reads the DEPTH replies; a request's latency runs from the
//! batch write to the moment its own reply has been read. Every payload carries the producing
//! connection, a sequence number and a checksum, so the tool checks at the end, after an untimed
//! drain of whatever the timed phase left behind, that each acknowledged item came back exactly
//! once, intact, and (tern) in its producer's order. See `benches/README.md`.
//!
//! This file owns the entry point: one run or the smoke, and the exit status (0 verified, 1 a run
//! failed, 2 a bad command line). The modules: `args` (command line, `Config`), `workloads` (one
//! function per workload), `pipeline` (pipelined producer and reader workers, threads, fill and
//! drain), `client` (a connection), `payload` (item encoding), `hist` (latency percentiles),
//! `verify` (what workers saw, checked), `output` (the result line), `smoke` (`--smoke`).

mod args;
mod client;
mod hist;
mod output;
mod payload;
mod pipeline;
mod smoke;
mod verify;
mod workloads;

use std::process::ExitCode;

use args::{parse_args, Parsed};
use output::report;
use smoke::smoke;
use structopt::clap::ErrorKind;
use workloads::run;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args) {
        Err(e) if e.kind == ErrorKind::HelpDisplayed => {
            println!("{}", e.message);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", e.message);
            ExitCode::from(2)
        }
        Ok(Parsed::Usage(usage)) => {
            println!("{usage}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Smoke(addr)) => {
            if smoke(&addr) {
                println!("smoke: ok");
                ExitCode::SUCCESS
            } else {
                println!("smoke: FAILED");
                ExitCode::FAILURE
            }
        }
        Ok(Parsed::Run(cfg)) => {
            if report(&run(&cfg)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
