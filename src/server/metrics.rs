//! What `--metrics` serves: the Prometheus exposition of the server's counters, the store's
//! per-queue and per-cursor figures and the latency histograms (`GET /metrics`), and the
//! health verdict (`GET /healthz`). Built at scrape time from what `stats` reads, so the two
//! agree and serving pays nothing per item; the HTTP side is in `http`.
//!
//! Per-queue and per-cursor metrics come from the same field lists as `stats`
//! ([`stats::queue_fields`], [`stats::cursor_fields`]), plus the per-queue counters `stats`
//! has no line for ([`metric_fields`]): a field added there is exported here through one row
//! of [`QUEUE_METRICS`] or [`CURSOR_METRICS`]. Rows that share a name are one family, told
//! apart by their label.

use super::shared::Shared;
use super::stats::{self, Counters};
use crate::queue::{QueueStats, Store};
use prometheus::core::Collector;
use prometheus::proto::{self, MetricFamily, MetricType};
use std::sync::atomic::{AtomicU64, Ordering};

/// The content type of [`encode`]'s text.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a `stats` field is exported: the `stats` name, the metric's name and help, its type,
/// the factor from the `stats` unit to the metric's (milliseconds → seconds), and a label of
/// its own (name, value) when rows share the metric.
struct Row {
    field: &'static str,
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    scale: f64,
    label: Option<(&'static str, &'static str)>,
}

const fn row(field: &'static str, name: &'static str, help: &'static str, kind: MetricType) -> Row {
    Row {
        field,
        name,
        help,
        kind,
        scale: 1.0,
        label: None,
    }
}

const fn ms_as_seconds(field: &'static str, name: &'static str, help: &'static str) -> Row {
    Row {
        scale: 0.001,
        ..row(field, name, help, MetricType::GAUGE)
    }
}

/// Open reads given back, as one sample of [`GIVEN_BACK`] labelled with the `reason`.
const fn given_back(field: &'static str, reason: &'static str) -> Row {
    Row {
        label: Some(("reason", reason)),
        ..row(field, GIVEN_BACK, GIVEN_BACK_HELP, COUNTER)
    }
}

const GIVEN_BACK: &str = "tern_queue_open_reads_given_back_total";
const GIVEN_BACK_HELP: &str = "Open reads (plain and cursor) given back, by reason: abort \
    (an explicit /abort), disconnect (the connection closed holding it), timeout (the open \
    timeout; stats open_timeouts).";

/// The per-queue counters only the metrics export (`stats`'s lines are fixed by SPEC.md).
fn metric_fields(queue: &QueueStats) -> [(&'static str, u64); 4] {
    [
        ("dequeued_items", queue.dequeued_items),
        ("discarded_items", queue.discarded_items),
        ("aborted_reads", queue.aborted_reads),
        ("disconnected_reads", queue.disconnected_reads),
    ]
}

use MetricType::{COUNTER, GAUGE};

/// Per queue (label `queue`), from `stats`'s `queue_<q>_<field>` and [`metric_fields`].
#[rustfmt::skip]
const QUEUE_METRICS: &[Row] = &[
    row("items", "tern_queue_items", "Items waiting to be read (open reads not included).", GAUGE),
    row("bytes", "tern_queue_bytes", "Payload bytes waiting to be read.", GAUGE),
    row("total_items", "tern_queue_enqueued_total", "Items stored into the queue.", COUNTER),
    row("expired_items", "tern_queue_expired_total", "Items discarded because they expired.", COUNTER),
    row("open_transactions", "tern_queue_open_reads", "Plain reads held open (get /open).", GAUGE),
    row("waiters", "tern_queue_waiters", "Blocked reads (get /t=) waiting, cursor readers included.", GAUGE),
    ms_as_seconds("age_ms", "tern_queue_age_seconds", "Age of the oldest waiting item (0 when none)."),
    given_back("open_timeouts", "timeout"),
    given_back("aborted_reads", "abort"),
    given_back("disconnected_reads", "disconnect"),
    row("dequeued_items", "tern_queue_dequeued_total", "Plain items taken by a get or confirmed by a /close (cursor reads remove nothing).", COUNTER),
    row("discarded_items", "tern_queue_discarded_total", "Waiting items discarded to make room for new ones (discard_old).", COUNTER),
];

/// Per cursor (labels `queue`, `cursor`), from `stats`'s `queue_<q>.<c>_<field>`.
#[rustfmt::skip]
const CURSOR_METRICS: &[Row] = &[
    row("items", "tern_cursor_lag_items", "Items the cursor has left to read, failed reads included.", GAUGE),
    row("failed_items", "tern_cursor_failed_items", "Failed reads waiting to be served again to the cursor.", GAUGE),
    row("open_transactions", "tern_cursor_open_reads", "Cursor reads held open (get q.c/open).", GAUGE),
    ms_as_seconds("age_ms", "tern_cursor_lag_seconds", "Age of the next item the cursor would read: its lag in time (0 when none)."),
];

/// What the server-wide metrics are read from at scrape time.
struct Sources<'a> {
    counters: &'a Counters,
    queues: &'a [QueueStats],
    store: &'a Store,
}

impl Sources<'_> {
    fn get(&self, counter: impl Fn(&Counters) -> &AtomicU64) -> f64 {
        counter(self.counters).load(Ordering::Relaxed) as f64
    }

    fn sum(&self, field: impl Fn(&QueueStats) -> u64) -> f64 {
        self.queues.iter().map(field).sum::<u64>() as f64
    }
}

/// How a server-wide metric's value is read.
type ReadFrom = fn(&Sources) -> f64;

/// A label's value and the sample's value.
type Sample<'a> = (&'a str, f64);

/// Server-wide metrics without labels: name, help, type, value (`stats` names in the help
/// where they differ).
#[rustfmt::skip]
const SERVER_METRICS: &[(&str, &str, MetricType, ReadFrom)] = &[
    ("tern_uptime_seconds", "Seconds since the server started.", GAUGE,
        |s| s.counters.started.elapsed().as_secs_f64()),
    ("tern_connections", "Client connections open now.", GAUGE, |s| s.get(|c| &c.curr_connections)),
    ("tern_connections_total", "Client connections accepted.", COUNTER, |s| s.get(|c| &c.total_connections)),
    ("tern_connections_refused_total", "Client connections refused at --max-connections.", COUNTER,
        |s| s.get(|c| &c.refused_connections)),
    ("tern_items", "Items waiting in all queues (stats curr_items).", GAUGE, |s| s.sum(|q| q.items)),
    ("tern_items_stored_total", "Items stored, a fanout counting each queue (stats total_items).", COUNTER,
        |s| s.get(|c| &c.total_items)),
    ("tern_bytes", "Payload bytes waiting in all queues.", GAUGE, |s| s.sum(|q| q.bytes)),
    ("tern_read_bytes_total", "Bytes read from clients.", COUNTER, |s| s.get(|c| &c.bytes_read)),
    ("tern_written_bytes_total", "Bytes written to clients.", COUNTER, |s| s.get(|c| &c.bytes_written)),
    ("tern_disk_bytes", "Size of the data directory on disk.", GAUGE, |s| s.store.disk_bytes() as f64),
    ("tern_resident_memory_bytes", "Resident memory of the process.", GAUGE, |_| stats::rss_bytes() as f64),
];

/// The whole exposition, in the Prometheus text format.
pub(super) fn encode(shared: &Shared) -> String {
    let store = &shared.store;
    let queues = store.stats();
    let mut families = server_families(&shared.counters, &queues, store);
    families.extend(queue_families(&queues));
    families.extend(shared.counters.latency.by_command.collect());
    let commit = store.commit_metrics();
    for histogram in [&commit.time_to_durable, &commit.writers, &commit.sync] {
        families.extend(histogram.collect());
    }
    families.retain(|family| !family.get_metric().is_empty());
    let mut text = String::new();
    // Only a family without samples fails, and those were just left out.
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut text) {
        log::error!("cannot encode the metrics: {e}");
    }
    text
}

/// `Ok` while tern serves and accepts writes; otherwise why not, in one line.
pub(super) fn health(shared: &Shared) -> Result<(), String> {
    if shared.shutdown.is_triggered() {
        return Err("shutting down".into());
    }
    shared.store.accepts_writes().map_err(|e| match e {
        crate::queue::Error::DiskFull => {
            format!("refusing writes: {e} (free space under --min-free-mb)")
        }
        e => format!("storage error: {e}"),
    })
}

fn server_families(counters: &Counters, queues: &[QueueStats], store: &Store) -> Vec<MetricFamily> {
    let sources = Sources {
        counters,
        queues,
        store,
    };
    let mut families: Vec<MetricFamily> = SERVER_METRICS
        .iter()
        .map(|(name, help, kind, value)| family(name, help, *kind, [(vec![], value(&sources))]))
        .collect();
    let labelled = |name: &'static str, pairs: &[(&str, f64)]| {
        let samples = pairs
            .iter()
            .map(|(label, value)| (vec![(name, label.to_string())], *value));
        samples.collect::<Vec<_>>()
    };
    let commands = [
        ("get", sources.get(|c| &c.cmd_get)),
        ("set", sources.get(|c| &c.cmd_set)),
        ("peek", sources.get(|c| &c.cmd_peek)),
    ];
    let results = [
        ("hit", sources.get(|c| &c.get_hits)),
        ("miss", sources.get(|c| &c.get_misses)),
    ];
    let errors = counters
        .errors
        .by_kind()
        .map(|(reply, n)| (reply, n as f64));
    let version = [(crate::VERSION, 1.0)];
    #[rustfmt::skip]
    let labelled_families: [(&str, &str, MetricType, &str, &[Sample]); 4] = [
        ("tern_build_info", "The version of tern serving, as a label.", GAUGE, "version", &version),
        ("tern_commands_total", "Keys read (get: not peeks; peek) and sets, by command.", COUNTER,
            "command", &commands),
        ("tern_get_results_total", "Non-peek keys read, by whether they returned an item.", COUNTER,
            "result", &results),
        ("tern_error_replies_total", "Error replies sent, by their first word.", COUNTER,
            "reply", &errors),
    ];
    families.extend(
        labelled_families.map(|(name, help, kind, label, pairs)| {
            family(name, help, kind, labelled(label, pairs))
        }),
    );
    if let Some(free) = store.free_disk_bytes() {
        let help = "Free space of the data directory's filesystem.";
        families.push(family(
            "tern_disk_free_bytes",
            help,
            GAUGE,
            [(vec![], free as f64)],
        ));
    }
    families
}

/// One family per metric of [`QUEUE_METRICS`] and [`CURSOR_METRICS`], a sample per queue or
/// cursor and row. A field without a row is left out (the integration test catches that).
fn queue_families(queues: &[QueueStats]) -> Vec<MetricFamily> {
    let mut families: Vec<MetricFamily> = Vec::new();
    // The family of each row of QUEUE_METRICS then CURSOR_METRICS, by index into `families`.
    let at: Vec<usize> = QUEUE_METRICS
        .iter()
        .chain(CURSOR_METRICS)
        .map(|row| {
            let known = families.iter().position(|f| f.name() == row.name);
            known.unwrap_or_else(|| {
                families.push(family(row.name, row.help, row.kind, []));
                families.len() - 1
            })
        })
        .collect();
    let (queue_at, cursor_at) = at.split_at(QUEUE_METRICS.len());
    for queue in queues {
        let queue_label = ("queue", queue.name.clone());
        let fields = stats::queue_fields(queue).into_iter();
        let rows = (QUEUE_METRICS, queue_at);
        push_fields(
            &mut families,
            rows,
            fields.chain(metric_fields(queue)),
            std::slice::from_ref(&queue_label),
        );
        for cursor in &queue.cursors {
            let labels = [queue_label.clone(), ("cursor", cursor.name.clone())];
            let fields = stats::cursor_fields(cursor);
            push_fields(&mut families, (CURSOR_METRICS, cursor_at), fields, &labels);
        }
    }
    families
}

/// A sample for each field that has a row, with `labels` and the row's own label.
fn push_fields(
    families: &mut [MetricFamily],
    (rows, at): (&[Row], &[usize]),
    fields: impl IntoIterator<Item = (&'static str, u64)>,
    labels: &[(&'static str, String)],
) {
    for (field, value) in fields {
        if let Some(i) = rows.iter().position(|row| row.field == field) {
            let row = &rows[i];
            let mut labels = labels.to_vec();
            labels.extend(row.label.map(|(name, value)| (name, value.to_string())));
            push(&mut families[at[i]], &labels, value as f64 * row.scale);
        }
    }
}

type Labels = Vec<(&'static str, String)>;

fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels, f64)>,
) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(kind);
    for (labels, value) in samples {
        push(&mut family, &labels, value);
    }
    family
}

fn push(family: &mut MetricFamily, labels_of: &[(&'static str, String)], value: f64) {
    let mut metric = proto::Metric::default();
    metric.set_label(labels(labels_of));
    if family.get_field_type() == COUNTER {
        let mut counter = proto::Counter::default();
        counter.set_value(value);
        metric.set_counter(counter);
    } else {
        let mut gauge = proto::Gauge::default();
        gauge.set_value(value);
        metric.set_gauge(gauge);
    }
    family.mut_metric().push(metric);
}

fn labels(pairs: &[(&'static str, String)]) -> Vec<proto::LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = proto::LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.clone());
            pair
        })
        .collect()
}
