//! One look at a running tern over its memcache port: `stats` for the server-wide figures and
//! `dump_stats` for each queue's and cursor's (its blocks name them unambiguously, where a
//! `stats` key such as `queue_a_b_items` does not say where the name ends).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a look may wait for the server.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The figures of one queue or cursor, by `dump_stats` field name.
pub type Fields = BTreeMap<String, u64>;

/// One queue with its cursors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueView {
    pub name: String,
    pub fields: Fields,
    /// `(cursor name, fields)`, in the server's order.
    pub cursors: Vec<(String, Fields)>,
}

/// What one look saw.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    /// `stats`' server-wide lines (name → value), queue lines left out.
    pub server: BTreeMap<String, String>,
    pub queues: Vec<QueueView>,
}

/// A connection to the server, reused for every look.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(addr: &str) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// `stats`, then `dump_stats`.
    pub fn look(&mut self) -> io::Result<Snapshot> {
        let at = Instant::now();
        let server = self
            .ask("stats")?
            .iter()
            .filter_map(|line| {
                let mut words = line.strip_prefix("STAT ")?.splitn(2, ' ');
                let (name, value) = (words.next()?, words.next()?);
                (!name.starts_with("queue_")).then(|| (name.to_string(), value.to_string()))
            })
            .collect();
        let queues = parse_dump(&self.ask("dump_stats")?)?;
        Ok(Snapshot { at, server, queues })
    }

    /// Sends `command`; returns the reply's lines before `END`.
    fn ask(&mut self, command: &str) -> io::Result<Vec<String>> {
        self.writer.write_all(format!("{command}\r\n").as_bytes())?;
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line == "END" {
                return Ok(lines);
            }
            lines.push(line.to_string());
        }
    }
}

fn bad(line: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected dump_stats line {line:?}"),
    )
}

/// Reads `dump_stats` blocks (`queue 'q' {`, `  field=value`…, `}`): a name with a `.` is a
/// cursor of the queue before it.
pub fn parse_dump(lines: &[String]) -> io::Result<Vec<QueueView>> {
    let mut queues: Vec<QueueView> = Vec::new();
    let mut current: Option<(String, Fields)> = None;
    for line in lines {
        if let Some(name) = line
            .strip_prefix("queue '")
            .and_then(|rest| rest.strip_suffix("' {"))
        {
            current = Some((name.to_string(), Fields::new()));
        } else if line == "}" {
            let (name, fields) = current.take().ok_or_else(|| bad(line))?;
            match name.split_once('.') {
                Some((queue, cursor)) => {
                    let owner = queues.iter_mut().rev().find(|q| q.name == queue);
                    let owner = owner.ok_or_else(|| bad(line))?;
                    owner.cursors.push((cursor.to_string(), fields));
                }
                None => queues.push(QueueView {
                    name,
                    fields,
                    cursors: Vec::new(),
                }),
            }
        } else {
            let (field, value) = line.trim_start().split_once('=').ok_or_else(|| bad(line))?;
            let (_, fields) = current.as_mut().ok_or_else(|| bad(line))?;
            fields.insert(field.to_string(), value.parse().map_err(|_| bad(line))?);
        }
    }
    Ok(queues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_blocks_become_queues_with_their_cursors() {
        let text = "queue 'a_b' {|  items=2|  age_ms=1520|}|queue 'a_b.c_d' {|  items=3|  \
                    failed_items=1|}|queue 'z' {|  items=0|}";
        let lines: Vec<String> = text.split('|').map(String::from).collect();
        let queues = parse_dump(&lines).unwrap();
        assert_eq!(queues.len(), 2);
        assert_eq!(queues[0].name, "a_b");
        assert_eq!(queues[0].fields["age_ms"], 1520);
        assert_eq!(queues[0].cursors[0].0, "c_d");
        assert_eq!(queues[0].cursors[0].1["failed_items"], 1);
        assert_eq!(queues[1].name, "z");
        assert!(parse_dump(&["  items=1".to_string()]).is_err());
        assert!(parse_dump(&["queue 'x.c' {".into(), "}".into()]).is_err());
    }
}
