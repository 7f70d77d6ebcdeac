//! The table `tern top` shows: a header line, then one row per queue, deepest first, each
//! followed by its cursors. Rates come from two looks; without an earlier one they are `-`.

use super::snapshot::{Fields, QueueView, Snapshot};

/// The column titles, after the name column.
const COLUMNS: [&str; 7] = ["ITEMS", "IN/S", "OUT/S", "AGE", "OPEN", "FAILED", "WAITERS"];
/// Longest name shown whole.
const MAX_NAME: usize = 40;

/// The table's lines, without line ends. `earlier`: the previous look, for rates.
pub fn render(now: &Snapshot, earlier: Option<&Snapshot>, addr: &str) -> Vec<String> {
    let server = |name: &str| now.server.get(name).map(String::as_str).unwrap_or("?");
    let items: u64 = now.queues.iter().map(|q| get(&q.fields, "items")).sum();
    let mut lines = vec![format!(
        "{} at {addr}, up {}s: {} queues, {items} items, {} connections",
        server("version"),
        server("uptime"),
        now.queues.len(),
        server("curr_connections"),
    )];
    let mut queues: Vec<&QueueView> = now.queues.iter().collect();
    queues.sort_by(|a, b| {
        let depth = |q: &QueueView| get(&q.fields, "items");
        depth(b).cmp(&depth(a)).then(a.name.cmp(&b.name))
    });
    let width = queues
        .iter()
        .flat_map(|q| {
            let cursors = q.cursors.iter().map(|(c, _)| c.chars().count() + 3);
            std::iter::once(q.name.chars().count()).chain(cursors)
        })
        .max()
        .unwrap_or(0)
        .clamp(5, MAX_NAME);
    let row = |name: &str, cells: [String; 7]| {
        let name: String = name.chars().take(width).collect();
        let mut line = format!("{name:<width$}");
        for cell in cells {
            line += &format!(" {cell:>8}");
        }
        line
    };
    lines.push(row("QUEUE", COLUMNS.map(String::from)));
    let seconds = earlier.map(|e| now.at.duration_since(e.at).as_secs_f64());
    for queue in queues {
        let before = earlier.and_then(|e| e.queues.iter().find(|q| q.name == queue.name));
        let f = &queue.fields;
        let rate = |delta: fn(&Fields, &Fields) -> i128| match (before, seconds) {
            (Some(b), Some(s)) if s > 0.0 => {
                format!("{:.1}", delta(f, &b.fields).max(0) as f64 / s)
            }
            _ => "-".to_string(),
        };
        lines.push(row(
            &queue.name,
            [
                get(f, "items").to_string(),
                rate(|now, then| diff(now, then, "total_items")),
                // What left waiting and open reads: read and closed, expired, discarded.
                rate(|now, then| {
                    diff(now, then, "total_items")
                        - diff(now, then, "items")
                        - diff(now, then, "open_transactions")
                }),
                age(f),
                get(f, "open_transactions").to_string(),
                "".to_string(),
                get(f, "waiters").to_string(),
            ],
        ));
        for (cursor, c) in &queue.cursors {
            let name = format!("  .{cursor}");
            let empty = String::new;
            lines.push(row(
                &name,
                [
                    get(c, "items").to_string(),
                    empty(),
                    empty(),
                    age(c),
                    get(c, "open_transactions").to_string(),
                    get(c, "failed_items").to_string(),
                    empty(),
                ],
            ));
        }
    }
    lines
}

fn get(fields: &Fields, name: &str) -> u64 {
    fields.get(name).copied().unwrap_or(0)
}

fn diff(now: &Fields, then: &Fields, name: &str) -> i128 {
    i128::from(get(now, name)) - i128::from(get(then, name))
}

/// `age_ms` in a short human form, `-` where the server does not give it.
fn age(fields: &Fields) -> String {
    match fields.get("age_ms") {
        None => "-".to_string(),
        Some(&ms) if ms < 10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(&ms) if ms < 600_000 => format!("{}s", ms / 1000),
        Some(&ms) if ms < 36_000_000 => format!("{}m", ms / 60_000),
        Some(&ms) => format!("{}h", ms / 3_600_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn queue(name: &str, fields: &[(&str, u64)], cursors: &[(&str, &[(&str, u64)])]) -> QueueView {
        let fields_of =
            |pairs: &[(&str, u64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        QueueView {
            name: name.to_string(),
            fields: fields_of(fields),
            cursors: cursors
                .iter()
                .map(|(c, f)| (c.to_string(), fields_of(f)))
                .collect(),
        }
    }

    #[test]
    fn deepest_queue_first_with_rates_and_cursors_under_their_queue() {
        let at = Instant::now();
        let earlier = Snapshot {
            at,
            server: Default::default(),
            queues: vec![queue("big", &[("items", 10), ("total_items", 10)], &[])],
        };
        let now = Snapshot {
            at: at + Duration::from_secs(2),
            server: [("version".to_string(), "tern-9".to_string())].into(),
            queues: vec![
                queue("small", &[("items", 1), ("total_items", 1)], &[]),
                queue(
                    "big",
                    &[("items", 14), ("total_items", 20), ("age_ms", 1500)],
                    &[("c", &[("items", 7), ("failed_items", 1)])],
                ),
            ],
        };
        let lines = render(&now, Some(&earlier), "here");
        assert!(
            lines[0].starts_with("tern-9 at here, up ?s: 2 queues, 15 items"),
            "{}",
            lines[0]
        );
        let words = |line: &str| {
            line.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            words(&lines[1]),
            ["QUEUE", "ITEMS", "IN/S", "OUT/S", "AGE", "OPEN", "FAILED", "WAITERS"]
        );
        // 10 in and 6 out over 2 s.
        assert_eq!(
            words(&lines[2]),
            ["big", "14", "5.0", "3.0", "1.5s", "0", "0"]
        );
        assert_eq!(words(&lines[3]), [".c", "7", "-", "0", "1"]);
        assert_eq!(words(&lines[4]), ["small", "1", "-", "-", "-", "0", "0"]);
    }
}
