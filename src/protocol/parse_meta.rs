//! Parsing the meta commands (`ms`, `mg`, `md`, `mn`; SPEC.md "Meta commands"): a line's
//! tokens, and `ms`'s data block, → a [`Command`] or the error to reply.
//!
//! Flags are checked left to right, the first bad one giving the reply; then the key (which
//! `b` says how to read); then `ms`'s mode. Everything kept is bounded by the line's length.

use super::command::{Command, Set};
use super::meta::{Meta, MetaDelete, MetaGet, MetaSet, Returned};
use super::parse::{
    data_block, parse_i64, parse_key, parse_set_names, parse_target, parse_u32, too_large,
    Rejection,
};
use super::Error;

/// Longest opaque (`O`) token.
const MAX_OPAQUE: usize = 32;

/// Which command's flags are being read: each knows its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Set,
    Delete,
}

impl Kind {
    fn knows(self, flag: u8) -> bool {
        match flag {
            // P and L are memcached's proxy hints: accepted, ignored.
            b'O' | b'k' | b'b' | b'q' | b'P' | b'L' => true,
            b'v' | b'f' | b's' | b't' => self == Kind::Get,
            b'c' => self != Kind::Delete,
            b'F' | b'T' | b'I' | b'M' => self == Kind::Set,
            _ => false,
        }
    }
}

/// The flags of one meta line, checked.
#[derive(Default)]
struct Flags {
    meta: Meta,
    /// `v`.
    value: bool,
    /// `F`.
    client_flags: u32,
    /// `T`.
    exptime: i64,
    /// An `M` mode other than set.
    unsupported_mode: bool,
}

fn parse_flags(tokens: &[&[u8]], kind: Kind) -> Result<Flags, Error> {
    let mut flags = Flags::default();
    let mut seen = [false; 256];
    for token in tokens {
        // Tokens are never empty (the line is split on runs of spaces).
        let Some((&flag, arg)) = token.split_first() else {
            continue;
        };
        if !kind.knows(flag) {
            return Err(Error::InvalidFlag);
        }
        // memcached rejects a repeated flag too; tern's reply for it is the format error.
        if std::mem::replace(&mut seen[usize::from(flag)], true) {
            return Err(Error::BadFormat);
        }
        let returned = match flag {
            b'O' if (1..=MAX_OPAQUE).contains(&arg.len()) => Some(Returned::Opaque(arg.to_vec())),
            b'F' => {
                flags.client_flags = parse_u32(arg).ok_or(Error::BadFormat)?;
                None
            }
            b'T' => {
                flags.exptime = parse_i64(arg).ok_or(Error::BadFormat)?;
                None
            }
            b'M' => match arg {
                [b'S' | b's'] => None,
                [b'E' | b'e' | b'A' | b'a' | b'P' | b'p' | b'R' | b'r'] => {
                    flags.unsupported_mode = true;
                    None
                }
                _ => return Err(Error::BadFormat),
            },
            b'P' | b'L' => None,
            b'O' => return Err(Error::BadFormat),
            // The rest take no token.
            _ if !arg.is_empty() => return Err(Error::BadFormat),
            b'v' => {
                flags.value = true;
                None
            }
            b'q' => {
                flags.meta.quiet = true;
                None
            }
            b'b' => {
                flags.meta.base64 = true;
                None
            }
            b'k' => Some(Returned::Key),
            b'f' => Some(Returned::ClientFlags),
            b's' => Some(Returned::Size),
            b't' => Some(Returned::Ttl),
            b'c' => Some(Returned::Cas),
            // `I` (invalidate) means nothing for a queue.
            _ => None,
        };
        flags.meta.returns.extend(returned);
    }
    Ok(flags)
}

/// Reads the flags, then decodes the key if `b` says it is base64.
fn parse_line(raw: &[u8], tokens: &[&[u8]], kind: Kind) -> Result<(Vec<u8>, Flags), Error> {
    let mut flags = parse_flags(tokens, kind)?;
    let key = match flags.meta.base64 {
        true => decode_base64(raw).ok_or(Error::BadFormat)?,
        false => raw.to_vec(),
    };
    flags.meta.key = raw.to_vec();
    Ok((key, flags))
}

/// `<key> <flag>*`, as `mg` and `md` take.
fn parse_key_line(args: &[&[u8]], kind: Kind) -> Result<(Vec<u8>, Flags), Error> {
    let (raw, tokens) = args.split_first().ok_or(Error::BadFormat)?;
    parse_line(raw, tokens, kind)
}

/// `mg <key> <flag>*`.
pub(super) fn parse_mg(args: &[&[u8]]) -> Result<Command, Error> {
    let (key, flags) = parse_key_line(args, Kind::Get)?;
    Ok(Command::MetaGet(MetaGet {
        key: parse_key(&key)?,
        value: flags.value,
        meta: flags.meta,
    }))
}

/// `md <key> <flag>*`.
pub(super) fn parse_md(args: &[&[u8]]) -> Result<Command, Error> {
    let (key, flags) = parse_key_line(args, Kind::Delete)?;
    Ok(Command::MetaDelete(MetaDelete {
        target: parse_target(&key)?,
        meta: flags.meta,
    }))
}

/// `mn`.
pub(super) fn parse_mn(args: &[&[u8]]) -> Result<Command, Error> {
    match args {
        [] => Ok(Command::MetaNoop),
        _ => Err(Error::BadFormat),
    }
}

/// `ms <key> <datalen> <flag>*` and its data block. `<datalen>` follows `set`'s rules; once
/// it is valid, any other error of the line is answered after the block has arrived, and the
/// block is dropped with the line.
pub(super) fn parse_ms(
    buf: &[u8],
    args: &[&[u8]],
    line_len: usize,
    max_item_size: u32,
) -> Result<Option<(Command, usize)>, Rejection> {
    let fail = |error| Err(Rejection::line(error, line_len));
    let (raw, bytes, tokens) = match args {
        [raw, datalen, tokens @ ..] => match parse_u32(datalen) {
            Some(bytes) => (raw, bytes, tokens),
            None => return fail(Error::BadFormat),
        },
        _ => return fail(Error::BadFormat),
    };
    if bytes > max_item_size {
        return Err(too_large(line_len, bytes, false));
    }
    let total = line_len + bytes as usize + 2;
    if buf.len() < total {
        return Ok(None);
    }
    let line = parse_line(raw, tokens, Kind::Set).and_then(|(key, flags)| {
        let queues = parse_set_names(&key)?;
        match flags.unsupported_mode {
            true => Err(Error::ModeNotSupported),
            false => Ok((queues, flags)),
        }
    });
    let (queues, flags) = match line {
        Ok(line) => line,
        Err(error) => return Err(Rejection::line(error, total)),
    };
    let Some((data, total)) = data_block(buf, line_len, bytes, false)? else {
        return Ok(None);
    };
    let set = Set {
        queues,
        flags: flags.client_flags,
        exptime: flags.exptime,
        data: data.to_vec(),
        noreply: false,
    };
    let meta = flags.meta;
    Ok(Some((Command::MetaSet(MetaSet { set, meta }), total)))
}

/// Standard base64 with its padding, as memcached's `b` keys are; `None` if it is not that.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (i, quad) in text.chunks_exact(4).enumerate() {
        let padding = match (quad[2], quad[3]) {
            (b'=', b'=') => 2,
            (_, b'=') => 1,
            _ => 0,
        };
        if padding > 0 && i + 1 != quads {
            return None;
        }
        let mut bits = 0u32;
        for &c in &quad[..4 - padding] {
            bits = bits << 6 | value(c)?;
        }
        bits <<= 6 * padding;
        let bytes = bits.to_be_bytes();
        // Leftover bits must be zero: one text per key, as a strict encoder writes it.
        if bytes[4 - padding..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[1..4 - padding]);
    }
    Some(out)
}
