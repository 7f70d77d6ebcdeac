//! The parser: the start of an input buffer → a command, "need more", or a rejection. The
//! meta commands' lines are read by `parse_meta`, with the helpers here.

use super::command::{Command, Get, GetOptions, Key, Replay, Set, Target};
use super::parse_meta;
use super::Error;

/// Longest command line, not counting its `\r\n` (memcached's limit).
pub const MAX_LINE: usize = 2048;
/// Longest queue or cursor name.
pub const MAX_NAME: usize = 200;

/// What to do with input the protocol rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    pub error: Error,
    /// Bytes of the buffer to drop now (the command line, or line and data block).
    pub consumed: usize,
    /// Bytes after those to drop as well, as they arrive (a rejected data block and its
    /// `\r\n`): never buffered, so an oversized block costs no memory.
    pub discard: u64,
    /// `noreply` was given and the error was found after the line parsed: send nothing.
    pub silent: bool,
}

impl Rejection {
    pub(super) fn line(error: Error, consumed: usize) -> Rejection {
        Rejection {
            error,
            consumed,
            discard: 0,
            silent: false,
        }
    }
}

/// Parses the command at the start of `buf`.
///
/// `Ok(None)`: incomplete, read more. `Ok(Some((command, n)))`: `n` bytes made the command
/// (a `set` is complete only with its data block and `\r\n`). `Err(rejection)`: reply with
/// its error and skip what it says.
pub fn parse(buf: &[u8], max_item_size: u32) -> Result<Option<(Command, usize)>, Rejection> {
    let (line, line_len) = match find_line(buf)? {
        Some(found) => found,
        None => return Ok(None),
    };
    let mut tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let name = match tokens.next() {
        Some(name) => name,
        None => return Err(Rejection::line(Error::UnknownCommand, line_len)),
    };
    let args: Vec<&[u8]> = tokens.collect();
    let fail = |error| Err(Rejection::line(error, line_len));
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());

    let command = if is("set") {
        return parse_set(buf, &args, line_len, max_item_size);
    } else if is("ms") {
        return parse_meta::parse_ms(buf, &args, line_len, max_item_size);
    } else if is("mg") || is("md") || is("mn") {
        let parsed = if is("mg") {
            parse_meta::parse_mg(&args)
        } else if is("md") {
            parse_meta::parse_md(&args)
        } else {
            parse_meta::parse_mn(&args)
        };
        match parsed {
            Ok(command) => command,
            Err(error) => return fail(error),
        }
    } else if is("get") || is("gets") {
        if args.is_empty() {
            return fail(Error::BadFormat);
        }
        Command::Get(parse_get_keys(&args))
    } else if is("delete") || is("flush") {
        let (target, noreply) = match args.as_slice() {
            [target] => (target, false),
            [target, word] if *word == b"noreply" => (target, true),
            _ => return fail(Error::BadFormat),
        };
        let target = match parse_target(target) {
            Ok(target) => target,
            Err(error) => return fail(error),
        };
        if is("delete") {
            Command::Delete { target, noreply }
        } else {
            Command::Flush { target, noreply }
        }
    } else if is("flush_all") {
        let noreply = args.last() == Some(&&b"noreply"[..]);
        let delay = &args[..args.len() - usize::from(noreply)];
        match delay {
            [] => {}
            [delay] if parse_digits(delay).is_some() => {}
            _ => return fail(Error::BadFormat),
        }
        Command::FlushAll { noreply }
    } else if is("stats") && !args.is_empty() {
        // memcached's answer to a stats group it does not know; some clients (Perl's
        // Cache::Memcached) send `stats malloc` and stall on anything but ERROR or END.
        return fail(Error::UnknownCommand);
    } else {
        let command = if is("version") {
            Command::Version
        } else if is("stats") {
            Command::Stats
        } else if is("dump_stats") {
            Command::DumpStats
        } else if is("quit") {
            Command::Quit
        } else if is("shutdown") {
            Command::Shutdown
        } else {
            return fail(Error::UnknownCommand);
        };
        if !args.is_empty() {
            return fail(Error::BadFormat);
        }
        command
    };
    Ok(Some((command, line_len)))
}

/// The bytes the command at the start of `buf` takes in all, when its line is there and
/// announces a data block (`set`, `ms`): so that a connection can size its input buffer once
/// for a large item instead of doubling it up to there. `None` otherwise, or if the line is
/// not valid (then [`parse`] decides).
pub fn needs(buf: &[u8]) -> Option<usize> {
    let (line, line_len) = find_line(buf).ok()??;
    let args: Vec<&[u8]> = line
        .split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .collect();
    let bytes = match args.as_slice() {
        [name, _, _, _, bytes, ..] if name.eq_ignore_ascii_case(b"set") => bytes,
        [name, _, datalen, ..] if name.eq_ignore_ascii_case(b"ms") => datalen,
        _ => return None,
    };
    Some(line_len + parse_u32(bytes)? as usize + 2)
}

/// Finds the first line: `(line without its ending, bytes including the ending)`.
fn find_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, Rejection> {
    // A line of MAX_LINE bytes plus "\r\n" fits in this window.
    let window = &buf[..buf.len().min(MAX_LINE + 2)];
    match memchr::memchr(b'\n', window) {
        Some(end) => {
            let line = &buf[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > MAX_LINE {
                return Err(Rejection::line(Error::LineTooLong, end + 1));
            }
            Ok(Some((line, end + 1)))
        }
        // MAX_LINE + 1 bytes without a newline are too long, unless the last is the '\r' of
        // a line that is exactly MAX_LINE long.
        None if buf.len() > MAX_LINE + 1
            || (buf.len() == MAX_LINE + 1 && buf[MAX_LINE] != b'\r') =>
        {
            Err(Rejection::line(Error::LineTooLong, buf.len()))
        }
        None => Ok(None),
    }
}

fn parse_set(
    buf: &[u8],
    args: &[&[u8]],
    line_len: usize,
    max_item_size: u32,
) -> Result<Option<(Command, usize)>, Rejection> {
    let fail = |error| Err(Rejection::line(error, line_len));
    let (names, numbers) = match args.split_first() {
        Some(split) => split,
        None => return fail(Error::BadFormat),
    };
    // Numbers are read first but reported after names (SPEC: names, then numbers, then size);
    // a valid <bytes> lets even a rejected block be skipped to stay in sync.
    let header = match numbers {
        [flags, exptime, bytes] => parse_set_numbers(flags, exptime, bytes, false),
        [flags, exptime, bytes, word] if *word == b"noreply" => {
            parse_set_numbers(flags, exptime, bytes, true)
        }
        _ => None,
    };
    let queues = match parse_set_names(names) {
        Ok(queues) => queues,
        Err(error) => {
            return Err(Rejection {
                error,
                consumed: line_len,
                discard: header.map_or(0, |(_, _, bytes, _)| u64::from(bytes) + 2),
                silent: false,
            })
        }
    };
    let (flags, exptime, bytes, noreply) = match header {
        Some(header) => header,
        None => return fail(Error::BadFormat),
    };
    if bytes > max_item_size {
        return Err(too_large(line_len, bytes, noreply));
    }
    let (data, total) = match data_block(buf, line_len, bytes, noreply)? {
        Some(block) => block,
        None => return Ok(None),
    };
    let set = Set {
        queues,
        flags,
        exptime,
        data: data.to_vec(),
        noreply,
    };
    Ok(Some((Command::Set(set), total)))
}

/// A `<bytes>` over the item size limit: replied at once, the block dropped as it arrives.
pub(super) fn too_large(line_len: usize, bytes: u32, silent: bool) -> Rejection {
    Rejection {
        error: Error::TooLarge,
        consumed: line_len,
        discard: u64::from(bytes) + 2,
        silent,
    }
}

/// The data block of `bytes` bytes after a line of `line_len`, and how many bytes line and
/// block take with the block's `\r\n`: `Ok(None)` until all have arrived.
pub(super) fn data_block(
    buf: &[u8],
    line_len: usize,
    bytes: u32,
    silent: bool,
) -> Result<Option<(&[u8], usize)>, Rejection> {
    let end = line_len + bytes as usize;
    let total = end + 2;
    if buf.len() < total {
        return Ok(None);
    }
    if &buf[end..total] != b"\r\n" {
        return Err(Rejection {
            error: Error::BadDataChunk,
            consumed: total,
            discard: 0,
            silent,
        });
    }
    Ok(Some((&buf[line_len..end], total)))
}

fn parse_set_numbers(
    flags: &[u8],
    exptime: &[u8],
    bytes: &[u8],
    noreply: bool,
) -> Option<(u32, i64, u32, bool)> {
    Some((
        parse_u32(flags)?,
        parse_i64(exptime)?,
        parse_u32(bytes)?,
        noreply,
    ))
}

/// Digits that fit in a u32.
pub(super) fn parse_u32(bytes: &[u8]) -> Option<u32> {
    u32::try_from(parse_digits(bytes)?).ok()
}

/// Digits, maybe after a `-`, that fit in an i64.
pub(super) fn parse_i64(bytes: &[u8]) -> Option<i64> {
    match bytes.strip_prefix(b"-") {
        Some(magnitude) => 0i64.checked_sub_unsigned(parse_digits(magnitude)?),
        None => i64::try_from(parse_digits(bytes)?).ok(),
    }
}

/// `a+b+c` → `["a", "b", "c"]`, duplicates dropped, first order kept.
pub(super) fn parse_set_names(token: &[u8]) -> Result<Vec<String>, Error> {
    let mut queues: Vec<String> = Vec::new();
    for part in token.split(|&b| b == b'+') {
        let name = parse_name(part)?;
        if !queues.contains(&name) {
            queues.push(name);
        }
    }
    Ok(queues)
}

/// The keys of a `get`, a key repeated verbatim kept once: memcache clients return a
/// multi-get as a map by key, so a second item for the same key would reach nobody.
fn parse_get_keys(args: &[&[u8]]) -> Get {
    let mut keys = Vec::with_capacity(args.len());
    let mut seen = std::collections::HashSet::with_capacity(args.len());
    for raw in args {
        if !seen.insert(*raw) {
            continue;
        }
        match parse_key(raw) {
            Ok(key) => keys.push(key),
            Err(error) => {
                return Get {
                    keys,
                    error: Some(error),
                }
            }
        }
    }
    Get { keys, error: None }
}

/// `<queue>[.<cursor>][/<option>…]`.
pub(super) fn parse_key(raw: &[u8]) -> Result<Key, Error> {
    let mut parts = raw.split(|&b| b == b'/');
    let target = parse_target(parts.next().unwrap_or_default())?;
    let mut options = GetOptions::default();
    for option in parts {
        let flag = match option {
            b"open" => &mut options.open,
            b"close" => &mut options.close,
            b"abort" => &mut options.abort,
            b"peek" => &mut options.peek,
            b"rewind" => {
                replay(&mut options, Replay::Rewind)?;
                continue;
            }
            _ if option.starts_with(b"seek=") => {
                let ms = parse_seek(&option[b"seek=".len()..]).ok_or(Error::BadGetOptions)?;
                replay(&mut options, Replay::Seek(ms))?;
                continue;
            }
            _ => {
                let ms = option
                    .strip_prefix(b"t=")
                    .and_then(parse_digits)
                    .ok_or(Error::BadGetOptions)?;
                if options.timeout_ms.replace(ms).is_some() {
                    return Err(Error::BadGetOptions);
                }
                continue;
            }
        };
        if std::mem::replace(flag, true) {
            return Err(Error::BadGetOptions);
        }
    }
    let GetOptions {
        open,
        close,
        abort,
        peek,
        ..
    } = options;
    if (peek && (open || close || abort)) || (abort && (open || close)) {
        return Err(Error::BadGetOptions);
    }
    // A replay moves a cursor and reads nothing: on a cursor, as the key's only option.
    let alone = options
        == GetOptions {
            replay: options.replay,
            ..GetOptions::default()
        };
    if options.replay.is_some() && (target.cursor.is_none() || !alone) {
        return Err(Error::BadGetOptions);
    }
    Ok(Key {
        raw: raw.to_vec(),
        target,
        options,
    })
}

/// `<queue>` or `<queue>.<cursor>`.
pub(super) fn parse_target(token: &[u8]) -> Result<Target, Error> {
    let (queue, cursor) = match memchr::memchr(b'.', token) {
        Some(dot) => (&token[..dot], Some(parse_name(&token[dot + 1..])?)),
        None => (token, None),
    };
    Ok(Target {
        queue: parse_name(queue)?,
        cursor,
    })
}

/// A queue or cursor name: 1–200 bytes of `A-Z a-z 0-9 _ - :`.
fn parse_name(bytes: &[u8]) -> Result<String, Error> {
    let legal = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':');
    if bytes.is_empty() || bytes.len() > MAX_NAME || !bytes.iter().all(legal) {
        return Err(Error::BadQueueName);
    }
    // All bytes are ASCII, checked above.
    Ok(bytes.iter().map(|&b| b as char).collect())
}

/// Sets the key's replay, which may be given once.
fn replay(options: &mut GetOptions, replay: Replay) -> Result<(), Error> {
    match options.replay.replace(replay) {
        Some(_) => Err(Error::BadGetOptions),
        None => Ok(()),
    }
}

/// A `seek=` time: 1–19 decimal digits, no sign, within i64.
fn parse_seek(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > 19 {
        return None;
    }
    parse_digits(bytes).filter(|&ms| ms <= i64::MAX as u64)
}

/// A non-empty run of ASCII digits that fits in a u64.
fn parse_digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    bytes.iter().try_fold(0u64, |value, &b| {
        if b.is_ascii_digit() {
            value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}
