//! Replies other clients depend on (issue 13), in raw bytes: `version`'s protocol level,
//! `stats <group>`, and Kestrel's `dump_stats`.

mod common;

use common::*;

#[test]
fn version_leads_with_the_memcached_protocol_level() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let want = format!("VERSION 1.6.0 tern-{}\r\n", env!("CARGO_PKG_VERSION"));
    c.roundtrip(b"version\r\n", want.as_bytes());
    c.roundtrip(b"VERSION\n", want.as_bytes());
    // stats keeps the server's own version
    assert_eq!(
        c.stat("version"),
        Some(format!("tern-{}", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn a_stats_group_is_an_unknown_command_and_the_connection_goes_on() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"x");
    for group in ["malloc", "slabs", "items", "settings", "detail dump", "q"] {
        c.roundtrip(format!("stats {group}\r\n").as_bytes(), b"ERROR\r\n");
    }
    c.roundtrip(
        b"STATS sizes\r\nget q\r\n",
        &cat(&[b"ERROR\r\n", &value_reply("q", 0, b"x")]),
    );
}

/// Replaces each `age_ms=<n>` value with `*` (ages depend on the clock), returning them too.
fn mask_ages(dump: &[u8]) -> (String, Vec<u64>) {
    let text = String::from_utf8(dump.to_vec()).expect("dump_stats is text");
    let mut ages = Vec::new();
    let lines: Vec<String> = text
        .split_inclusive("\r\n")
        .map(|line| match line.strip_prefix("  age_ms=") {
            Some(age) => {
                ages.push(age.trim_end().parse().expect("age_ms is a number"));
                "  age_ms=*\r\n".to_string()
            }
            None => line.to_string(),
        })
        .collect();
    (lines.concat(), ages)
}

/// Sends `request` (a `dump_stats`) and reads its whole reply.
fn dump_stats(c: &mut Conn, request: &[u8]) -> Vec<u8> {
    c.send(request);
    let mut reply = Vec::new();
    loop {
        let line = c.read_line();
        reply.extend_from_slice(&line);
        if line == b"END\r\n" {
            return reply;
        }
    }
}

#[test]
fn dump_stats_is_kestrels_format_of_the_stats_figures() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"dump_stats\r\n", b"END\r\n");
    c.set("idle", b"gone");
    c.roundtrip(b"get idle\r\n", &value_reply("idle", 0, b"gone"));
    c.roundtrip(b"get jobs.billing\r\n", b"END\r\n");
    for item in [&b"one"[..], b"two", b"three"] {
        c.set("jobs", item);
    }
    c.roundtrip(
        b"get jobs.billing/open\r\n",
        &value_reply("jobs.billing/open", 0, b"one"),
    );
    c.roundtrip(b"get jobs\r\n", &value_reply("jobs", 0, b"one"));
    c.roundtrip(b"get jobs/open\r\n", &value_reply("jobs/open", 0, b"two"));

    let (dump, ages) = mask_ages(&dump_stats(&mut c, b"dump_stats\r\n"));
    assert_eq!(
        dump,
        "queue 'idle' {\r\n  items=0\r\n  bytes=0\r\n  total_items=1\r\n  expired_items=0\r\n  \
         open_transactions=0\r\n  waiters=0\r\n  age_ms=*\r\n  open_timeouts=0\r\n}\r\n\
         queue 'jobs' {\r\n  items=1\r\n  bytes=5\r\n  total_items=3\r\n  expired_items=0\r\n  \
         open_transactions=1\r\n  waiters=0\r\n  age_ms=*\r\n  open_timeouts=0\r\n}\r\n\
         queue 'jobs.billing' {\r\n  items=2\r\n  failed_items=0\r\n  open_transactions=1\r\n  \
         age_ms=*\r\n}\r\n\
         END\r\n"
    );
    // an empty queue has no age; a waiting item's age is real time, within reason
    assert_eq!(ages.len(), 3);
    assert_eq!(ages[0], 0);
    assert!(ages[1] < CONDITION_TIMEOUT.as_millis() as u64, "{ages:?}");
    assert!(ages[2] < CONDITION_TIMEOUT.as_millis() as u64, "{ages:?}");

    // The same figures as stats, in the same order, names without their prefix.
    let mut from_stats = String::new();
    let mut block = None;
    for (name, value) in c.stats() {
        let Some(rest) = name.strip_prefix("queue_") else {
            continue;
        };
        let (target, field) = rest.split_once('_').expect("queue_<q>_<field>");
        if block.as_deref() != Some(target) {
            if block.is_some() {
                from_stats.push_str("}\r\n");
            }
            from_stats.push_str(&format!("queue '{target}' {{\r\n"));
            block = Some(target.to_string());
        }
        let value = if field == "age_ms" { "*" } else { &value };
        from_stats.push_str(&format!("  {field}={value}\r\n"));
    }
    from_stats.push_str("}\r\nEND\r\n");
    let (dump, _) = mask_ages(&dump_stats(&mut c, b"dump_stats\r\n"));
    assert_eq!(dump, from_stats);
    // Command names are case-insensitive; arguments are not allowed.
    let (upper, _) = mask_ages(&dump_stats(&mut c, b"DUMP_STATS\n"));
    assert_eq!(upper, from_stats);
    c.roundtrip(
        b"dump_stats jobs\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
    );
}
