//! `tern top`: a live table of a running tern's queues and cursors, read over its memcache
//! port (`stats`, `dump_stats`) once a second, deepest queue first, in the terminal's
//! alternate screen until `q` or Ctrl-C; `--once` prints one table as plain text for scripts.
//!
//! Talks to the server as any client does (blocking std sockets: no runtime); `snapshot` reads,
//! `table` lays out; only this file names crossterm.

mod snapshot;
mod table;

pub use snapshot::{parse_dump, Client, QueueView, Snapshot};
pub use table::render;

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyModifiers};
use crossterm::{cursor, queue, terminal};
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// How often the live table is refreshed, and what `--once` measures its rates over.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Shows `addr`'s queues: live until `q` or Ctrl-C, or once (`once`) on standard output.
pub fn run(addr: &str, once: bool) -> io::Result<()> {
    let mut client = Client::connect(addr)?;
    if once {
        let earlier = client.look()?;
        std::thread::sleep(REFRESH);
        let now = client.look()?;
        let mut out = io::stdout().lock();
        for line in render(&now, Some(&earlier), addr) {
            writeln!(out, "{line}")?;
        }
        return out.flush();
    }
    let screen = Screen::enter()?;
    let mut earlier = None;
    loop {
        let now = client.look()?;
        let mut lines = render(&now, earlier.as_ref(), addr);
        lines.insert(1, "q or Ctrl-C quits; refreshed every second".to_string());
        screen.draw(&lines)?;
        earlier = Some(now);
        let next = Instant::now() + REFRESH;
        while let Some(left) = next.checked_duration_since(Instant::now()) {
            if !event::poll(left)? {
                break;
            }
            match event::read()? {
                Event::Key(key) if quits(key) => return Ok(()),
                Event::Resize(..) => screen.draw(&lines)?,
                _ => {}
            }
        }
    }
}

fn quits(key: KeyEvent) -> bool {
    match key.code {
        KeyCode::Char('q') | KeyCode::Char('Q') => true,
        KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
        _ => false,
    }
}

/// The terminal in raw mode on its alternate screen; dropping it puts everything back, also
/// when `run` returns an error.
struct Screen;

impl Screen {
    fn enter() -> io::Result<Screen> {
        terminal::enable_raw_mode()?;
        let screen = Screen;
        let mut out = io::stdout();
        queue!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
        out.flush()?;
        Ok(screen)
    }

    /// Replaces the screen's content with `lines`, cut to the terminal's size.
    fn draw(&self, lines: &[String]) -> io::Result<()> {
        let (columns, rows) = terminal::size().unwrap_or((80, 24));
        let mut out = io::stdout().lock();
        queue!(
            out,
            cursor::MoveTo(0, 0),
            terminal::Clear(terminal::ClearType::All)
        )?;
        for line in lines.iter().take(usize::from(rows)) {
            let shown: String = line.chars().take(usize::from(columns)).collect();
            // Raw mode: a line feed does not return the carriage.
            write!(out, "{shown}\r\n")?;
        }
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = io::stdout();
        let _ = queue!(out, cursor::Show, terminal::LeaveAlternateScreen);
        let _ = out.flush();
        let _ = terminal::disable_raw_mode();
    }
}
