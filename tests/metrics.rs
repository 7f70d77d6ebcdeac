//! `--metrics`: the scrape agrees with a `stats` snapshot taken just before it, field by field
//! (every `stats` figure has its metric); `/healthz`; the histograms count what was done;
//! `promtool check metrics` accepts a live scrape. The low-disk 503 is in `disk_full.rs`.

mod common;

use common::*;
use std::collections::BTreeMap;

/// Drives set, fanout, get, peek, cursor reads, open/abort/close and two error replies; returns
/// the two connections, still open (the second holds an open read on `b`).
fn drive(server: &Server) -> (Conn, Conn) {
    let mut c = Conn::connect(server);
    for data in ["one", "two", "three", "four"] {
        c.set("q", data.as_bytes());
    }
    c.roundtrip(b"set a+b 0 0 3\r\nfan\r\n", b"STORED\r\n");
    expect_item(&mut c, "q", b"one");
    expect_item(&mut c, "q/peek", b"two");
    expect_item(&mut c, "q.c", b"two");
    expect_item(&mut c, "q.c/open", b"three");
    expect_end(&mut c, "q.c/abort");
    expect_item(&mut c, "q/open", b"two");
    expect_end(&mut c, "q/abort");
    expect_item(&mut c, "q/open", b"two");
    expect_end(&mut c, "q/close");
    expect_end(&mut c, "empty");
    c.roundtrip(b"bogus\r\n", b"ERROR\r\n");
    c.roundtrip(b"get q/t=x\r\n", b"CLIENT_ERROR bad get options\r\n");
    let mut holder = Conn::connect(server);
    expect_item(&mut holder, "b/open", b"fan");
    (c, holder)
}

/// What each global `stats` figure is in the scrape (`None`: not exported, with why).
fn global_metric(stat: &str) -> Option<&'static str> {
    Some(match stat {
        "curr_connections" => "tern_connections",
        "total_connections" => "tern_connections_total",
        "cmd_get" => "tern_commands_total{command=\"get\"}",
        "cmd_set" => "tern_commands_total{command=\"set\"}",
        "cmd_peek" => "tern_commands_total{command=\"peek\"}",
        "get_hits" => "tern_get_results_total{result=\"hit\"}",
        "get_misses" => "tern_get_results_total{result=\"miss\"}",
        "curr_items" => "tern_items",
        "total_items" => "tern_items_stored_total",
        "bytes" => "tern_bytes",
        "bytes_read" => "tern_read_bytes_total",
        "bytes_written" => "tern_written_bytes_total",
        "uptime" => "tern_uptime_seconds",
        "disk_bytes" => "tern_disk_bytes",
        "rss_bytes" => "tern_resident_memory_bytes",
        "version" => "tern_build_info",
        // The wall clock and the process id are not figures to graph.
        "time" | "pid" => return None,
        other => panic!("stats has {other}, which the metrics test does not know"),
    })
}

/// What each per-queue and per-cursor `stats` field is in the scrape: the metric, and the
/// label that tells it from the other samples of its queue.
fn queue_metric(field: &str, cursor: bool) -> (&'static str, Option<&'static str>) {
    if (field, cursor) == ("open_timeouts", false) {
        let metric = "tern_queue_open_reads_given_back_total";
        return (metric, Some("reason=\"timeout\""));
    }
    let metric = match (field, cursor) {
        ("items", false) => "tern_queue_items",
        ("bytes", false) => "tern_queue_bytes",
        ("total_items", false) => "tern_queue_enqueued_total",
        ("expired_items", false) => "tern_queue_expired_total",
        ("open_transactions", false) => "tern_queue_open_reads",
        ("waiters", false) => "tern_queue_waiters",
        ("age_ms", false) => "tern_queue_age_seconds",
        ("items", true) => "tern_cursor_lag_items",
        ("failed_items", true) => "tern_cursor_failed_items",
        ("open_transactions", true) => "tern_cursor_open_reads",
        ("age_ms", true) => "tern_cursor_lag_seconds",
        _ => panic!("stats has a {field} field the metrics test does not know"),
    };
    (metric, None)
}

#[track_caller]
fn sample(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("{series} missing from the scrape: {samples:#?}"))
}

#[test]
fn scrape_agrees_with_a_stats_snapshot() {
    let server = Server::start_with_metrics(&[]);
    let (mut c, _holder) = drive(&server);
    let stats = c.stats();
    // Nothing runs between the two but the scrape, which no `stats` figure counts; only the
    // `stats` reply's own bytes are written after its snapshot. Bytes written are counted once
    // the write returns, which may be after the client has read them: so the scrape waits for
    // the stats reply's, and (the holder's reply may be counted late too) is bounded by a
    // second `stats` after it.
    let stats_reply: usize = stats
        .iter()
        .map(|(name, value)| "STAT  \r\n".len() + name.len() + value.len())
        .sum::<usize>()
        + "END\r\n".len();
    let written = stats.iter().find(|(n, _)| n == "bytes_written").unwrap();
    let written = written.1.parse::<f64>().unwrap() + stats_reply as f64;
    let mut samples = scrape(server.metrics_addr());
    wait_until("the stats reply's bytes to be counted", || {
        samples = scrape(server.metrics_addr());
        sample(&samples, "tern_written_bytes_total") >= written
    });
    let written_after: f64 = c.stat("bytes_written").unwrap().parse().unwrap();

    let targets = ["q.c", "q", "a", "b", "empty"];
    let mut queue_fields = 0;
    for (name, value) in &stats {
        if let Some(rest) = name.strip_prefix("queue_") {
            let (target, field) = targets
                .iter()
                .find_map(|t| Some((*t, rest.strip_prefix(&format!("{t}_"))?)))
                .unwrap_or_else(|| panic!("unexpected stat {name}"));
            let (metric, label) = queue_metric(field, target.contains('.'));
            let labels = match (target.split_once('.'), label) {
                (Some((q, c)), _) => format!("{{queue=\"{q}\",cursor=\"{c}\"}}"),
                (None, Some(label)) => format!("{{queue=\"{target}\",{label}}}"),
                (None, None) => format!("{{queue=\"{target}\"}}"),
            };
            let got = sample(&samples, &format!("{metric}{labels}"));
            let want: f64 = value.parse().unwrap();
            if field == "age_ms" {
                // Ages grow between the two looks.
                assert!(
                    got >= want / 1000.0,
                    "{metric}{labels} {got} < {name} {want} ms"
                );
            } else {
                assert_eq!(got, want, "{metric}{labels} against {name}");
            }
            queue_fields += 1;
            continue;
        }
        let Some(metric) = global_metric(name) else {
            continue;
        };
        match name.as_str() {
            "version" => {
                let series = format!("{metric}{{version=\"{value}\"}}");
                assert_eq!(sample(&samples, &series), 1.0);
            }
            "uptime" => {
                let want: f64 = value.parse().unwrap();
                assert!(sample(&samples, metric) >= want, "{metric} < uptime {want}");
            }
            // Changed by the allocator and sled's background work, not by clients.
            "disk_bytes" | "rss_bytes" => assert!(sample(&samples, metric) > 0.0, "{metric}"),
            "bytes_written" => {
                let got = sample(&samples, metric);
                assert!(written <= got && got <= written_after, "{metric} {got}");
            }
            _ => {
                let want: f64 = value.parse().unwrap();
                assert_eq!(sample(&samples, metric), want, "{metric} against {name}");
            }
        }
    }
    assert!(
        queue_fields >= 3 * 7 + 3,
        "only {queue_fields} queue figures"
    );
    // The cursor's failed read and the holder's open read show where they are.
    assert_eq!(
        sample(
            &samples,
            "tern_cursor_failed_items{queue=\"q\",cursor=\"c\"}"
        ),
        1.0
    );
    assert_eq!(sample(&samples, "tern_queue_open_reads{queue=\"b\"}"), 1.0);
    assert_eq!(
        sample(&samples, "tern_error_replies_total{reply=\"ERROR\"}"),
        1.0
    );
    assert_eq!(
        sample(&samples, "tern_error_replies_total{reply=\"CLIENT_ERROR\"}"),
        1.0
    );
    assert_eq!(sample(&samples, "tern_connections_refused_total"), 0.0);
    assert!(sample(&samples, "tern_disk_free_bytes") > 0.0);

    // Every set and every key read was timed, once.
    let count = |command: &str| {
        let series = format!("tern_command_duration_seconds_count{{command=\"{command}\"}}");
        sample(&samples, &series)
    };
    let stat = |name: &str| {
        stats
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .parse::<f64>()
    };
    assert_eq!(count("set"), stat("cmd_set").unwrap());
    let keys = stat("cmd_get").unwrap() + stat("cmd_peek").unwrap();
    assert_eq!(count("get") + count("open") + count("close"), keys);
    assert_eq!(count("open"), 4.0);
    assert_eq!(count("close"), 1.0);
    // Under --sync always each set waited for a group commit, which synced.
    assert!(sample(&samples, "tern_commit_wait_seconds_count") >= count("set"));
    assert!(sample(&samples, "tern_commit_writers_count") >= 1.0);
    assert!(sample(&samples, "tern_commit_sync_seconds_count") >= 1.0);
}

/// The counters `stats` has no line for, after a scripted sequence: items dequeued (a take, a
/// `/close`; not a cursor read, nor the late `/close` of a read that timed out), discarded
/// by `discard_old`, and open reads given back by reason (two aborts, one plain and one a
/// cursor's; two reads held by a connection that closes; one open timeout, on a fake clock).
#[test]
fn dequeued_discarded_and_given_back_are_counted_exactly() {
    let mut clock = FakeClock::new();
    let (_dir, config) = config_file("[queues.ring]\nmax_items = 2\ndiscard_old = true\n");
    let clock_args = clock.args();
    let mut args = vec!["--config", config.as_str(), "--open-timeout", "1000"];
    args.extend(clock_args.iter().map(String::as_str));
    let server = Server::start_with_metrics(&args);
    let mut c = Conn::connect(&server);
    for data in ["a", "b", "c", "d"] {
        c.set("q", data.as_bytes());
    }
    expect_item(&mut c, "q", b"a");
    expect_item(&mut c, "q/open", b"b");
    expect_end(&mut c, "q/close");
    expect_item(&mut c, "q/open", b"c");
    expect_end(&mut c, "q/abort");
    expect_item(&mut c, "q.c/open", b"c");
    expect_end(&mut c, "q.c/abort");
    expect_item(&mut c, "q.c", b"c");

    let mut holder = Conn::connect(&server);
    expect_item(&mut holder, "q/open", b"c");
    expect_item(&mut holder, "q.c/open", b"d");
    drop(holder);
    wait_until("the closed connection's reads to be given back", || {
        c.stat_u64("queue_q_open_transactions") == 0
            && c.stat_u64("queue_q.c_open_transactions") == 0
    });

    expect_item(&mut c, "q/open", b"c");
    clock.advance(1001);
    // Late: the read timed out, so this confirms nothing.
    expect_end(&mut c, "q/close");
    expect_item(&mut c, "q", b"c");

    for data in ["1", "2", "3", "4"] {
        c.set("ring", data.as_bytes());
    }
    expect_item(&mut c, "ring", b"3");
    assert_eq!(c.stat_u64("queue_q_open_timeouts"), 1);

    let samples = scrape(server.metrics_addr());
    let given_back = "tern_queue_open_reads_given_back_total";
    for (queue, dequeued, discarded, [abort, disconnect, timeout]) in [
        ("q", 3.0, 0.0, [2.0, 2.0, 1.0]),
        ("ring", 1.0, 2.0, [0.0; 3]),
    ] {
        let q = format!("queue=\"{queue}\"");
        let counted = [
            (format!("tern_queue_dequeued_total{{{q}}}"), dequeued),
            (format!("tern_queue_discarded_total{{{q}}}"), discarded),
            (format!("{given_back}{{{q},reason=\"abort\"}}"), abort),
            (
                format!("{given_back}{{{q},reason=\"disconnect\"}}"),
                disconnect,
            ),
            (format!("{given_back}{{{q},reason=\"timeout\"}}"), timeout),
        ];
        for (series, want) in counted {
            assert_eq!(sample(&samples, &series), want, "{series}");
        }
    }
}

#[test]
fn healthz_answers_ok_and_unknown_paths_404() {
    let server = Server::start_with_metrics(&[]);
    let health = http_get(server.metrics_addr(), "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let other = http_get(server.metrics_addr(), "/");
    assert_eq!(other.status, 404);
    // The memcache port is unaffected.
    let mut c = Conn::connect(&server);
    c.set("q", b"x");
    expect_item(&mut c, "q", b"x");
}

#[test]
fn promtool_accepts_a_live_scrape() {
    let server = Server::start_with_metrics(&[]);
    let _conns = drive(&server);
    let body = http_get(server.metrics_addr(), "/metrics").body;
    promtool(&["check", "metrics"], &body);
}

/// The database directory in use (`store-<n>`, named by `CURRENT`).
fn database_dir(server: &Server) -> std::path::PathBuf {
    let current = std::fs::read_to_string(server.data_dir().join("CURRENT")).unwrap();
    server.data_dir().join(current.trim())
}

#[test]
fn healthz_is_503_while_syncs_fail_and_200_once_one_succeeds() {
    let server = Server::start_with_metrics(&["--sync", "always"]);
    let mut c = Conn::connect(&server);
    // The first commit after a start creates a segment file: without the segment directory,
    // it fails, and so does every commit after it.
    let segments = database_dir(&server).join("segments");
    std::fs::remove_dir(&segments).expect("remove the empty segment directory");
    let refused = c.set_reply("q", b"b");
    assert!(
        refused.starts_with(b"SERVER_ERROR sync failure"),
        "{}",
        String::from_utf8_lossy(&refused)
    );
    let health = http_get(server.metrics_addr(), "/healthz");
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(
        health.body.starts_with("storage error: sync failure"),
        "{}",
        health.body
    );
    assert_eq!(health.body.lines().count(), 1, "{}", health.body);

    std::fs::create_dir(&segments).unwrap();
    c.set("q", b"c");
    let health = http_get(server.metrics_addr(), "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
}

#[test]
fn healthz_says_shutting_down_while_connections_drain() {
    let mut server = Server::start_with_metrics(&[]);
    let mut c = Conn::connect(&server);
    c.set("big", &payload(1 << 20, 7));
    // A client that asks for 64 MiB of replies and reads none: far more than socket buffers
    // hold, so its connection cannot get through its batch, and a stop waits for it (up to
    // the drain timeout).
    let mut stuck = Conn::connect(&server);
    stuck.send("get big/peek\r\n".repeat(64).as_bytes());
    wait_until("the server to serve the batch", || {
        c.stat_u64("cmd_peek") > 0
    });
    drop(c);
    server.signal(libc::SIGTERM);
    wait_until("/healthz to say 503 shutting down", || {
        let health = http_get(server.metrics_addr(), "/healthz");
        health.status == 503 && health.body == "shutting down\n"
    });
    drop(stuck);
    assert!(server.wait_exit().success());
}
