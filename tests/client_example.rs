//! The README's Rust client example, run against a live server, and a check that the README
//! shows exactly the example files the test suite and CI run.

mod common;

// README: rust example start
/// Producer, reliable consumer, cursor consumer and fanout, with the `memcache` crate.
fn example(address: &str) -> Result<(), memcache::MemcacheError> {
    let tern = memcache::connect(format!("memcache://{address}?protocol=ascii"))?;

    // Producer: each set appends to the tail of a queue; Ok means it is on disk.
    tern.set("jobs", "resize photo 1", 0)?;
    tern.set("jobs", "resize photo 2", 0)?;

    // Fanout: one item into several queues at once, all or none.
    tern.set("jobs+audit", "resize photo 3", 0)?;

    // Cursor consumer: reads the queue without taking anything; "billing" keeps its place.
    assert_eq!(
        tern.get::<String>("jobs.billing")?.as_deref(),
        Some("resize photo 1")
    );

    // Reliable consumer: open, work, close; an item whose consumer dies is served again.
    assert_eq!(
        tern.get::<String>("jobs/open")?.as_deref(),
        Some("resize photo 1")
    );
    tern.get::<String>("jobs/close")?;
    assert_eq!(
        tern.get::<String>("jobs")?.as_deref(),
        Some("resize photo 2")
    );

    // Blocking read: wait up to 500 ms for an item.
    assert_eq!(
        tern.get::<String>("audit/t=500")?.as_deref(),
        Some("resize photo 3")
    );
    Ok(())
}
// README: rust example end

#[test]
fn rust_client_example_runs() {
    let server = common::Server::start();
    example(&server.addr().to_string()).unwrap();
}

/// The README shows the very files that run: this file's example, and the Python and nc
/// examples that .ci/run runs against a live server.
#[test]
fn readme_shows_the_examples_that_run() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let this = std::fs::read_to_string(file!()).unwrap();
    let start = this.find("// README: rust example start\n").unwrap()
        + "// README: rust example start\n".len();
    let end = this.find("// README: rust example end").unwrap();
    let rust = &this[start..end];
    assert!(
        readme.contains(rust),
        "README.md lacks the Rust example of {}:\n{rust}",
        file!()
    );
    for path in ["tests/clients/example.py", "tests/clients/example.sh"] {
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + path)
                .unwrap();
        assert!(
            readme.contains(&example),
            "README.md lacks the example {path}:\n{example}"
        );
    }
}
