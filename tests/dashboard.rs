//! `dist/grafana/tern.json`: every metric its queries name exists in a live scrape, and every
//! query is valid PromQL (`promtool check rules` on them as recording rules).

mod common;

use common::*;
use std::collections::BTreeSet;

/// Every PromQL expression of the dashboard: panel targets and the templating queries.
fn expressions() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/grafana/tern.json");
    let text = std::fs::read_to_string(path).expect("read dist/grafana/tern.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(definition) = variable["definition"].as_str() {
            // `label_values(metric, label)` is Grafana's, not PromQL: keep the metric.
            let inner = definition
                .strip_prefix("label_values(")
                .expect("label_values");
            exprs.push(inner.split(',').next().unwrap().to_string());
        }
    }
    assert!(exprs.len() >= 12, "only {} queries", exprs.len());
    exprs
}

/// The `tern_…` names an expression mentions.
fn metric_names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tern_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_metric_the_dashboard_queries_exists_in_a_live_scrape() {
    let server = Server::start_with_metrics(&[]);
    // A queue and a cursor, so the per-queue and per-cursor families have samples.
    let mut c = Conn::connect(&server);
    c.set("q", b"one");
    c.set("q", b"two");
    expect_item(&mut c, "q.c", b"one");
    let scraped = metric_names(&scrape(server.metrics_addr()));
    let queried: BTreeSet<String> = expressions()
        .iter()
        .flat_map(|e| metric_names_in(e))
        .collect();
    assert!(queried.len() >= 15, "only {queried:?}");
    let missing: Vec<&String> = queried.difference(&scraped).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, not in the scrape {scraped:?}"
    );
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("dashboard.rules.yml");
    let mut text = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in expressions().iter().enumerate() {
        // Grafana's variables, as Grafana would fill them in.
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$queue", ".*");
        let quoted = serde_json::to_string(&expr).unwrap();
        text += &format!("      - record: dashboard:query_{i}\n        expr: {quoted}\n");
    }
    std::fs::write(&rules, &text).unwrap();
    // promtool reads the file; the text goes to its input only to be shown if it fails.
    promtool(&["check", "rules", rules.to_str().unwrap()], &text);
}
