//! Replies, encoded straight into a connection's output buffer.

use super::meta::{Meta, MetaCode, MetaItem, Returned};
use super::Error;
use std::fmt::Display;
use std::io::Write;

/// One reply line (or `VALUE` block).
pub enum Reply<'a> {
    Stored,
    Deleted,
    NotFound,
    End,
    Ok,
    /// `VALUE <key> <flags> <bytes>` + data block.
    Value {
        key: &'a [u8],
        flags: u32,
        data: &'a [u8],
    },
    /// `VERSION <memcached level> <server version>`.
    Version(&'a str),
    /// `STAT <name> <value>`.
    Stat(&'a str, &'a dyn Display),
    /// One block of `dump_stats` (Kestrel's format): `queue '<name>' {`, a `  <field>=<value>`
    /// line per field, `}`.
    StatBlock {
        name: &'a str,
        fields: &'a [(&'a str, u64)],
    },
    /// A meta reply: its code, then the flags `meta` asks back (value flags only with
    /// `item`); `VA` is followed by the item's data block.
    Meta {
        code: MetaCode,
        meta: &'a Meta,
        item: Option<MetaItem<'a>>,
    },
    /// `MN`, the reply to `mn`.
    MetaNoop,
    /// A protocol error: `ERROR`, `CLIENT_ERROR …` or `SERVER_ERROR object too large…`.
    Error(Error),
    /// `SERVER_ERROR <reason>`: the server could not do it (storage failure, queue full…).
    ServerError(&'a str),
}

impl Reply<'_> {
    /// Appends the reply, with its `\r\n`, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Stored => out.extend_from_slice(b"STORED\r\n"),
            Reply::Deleted => out.extend_from_slice(b"DELETED\r\n"),
            Reply::NotFound => out.extend_from_slice(b"NOT_FOUND\r\n"),
            Reply::End => out.extend_from_slice(b"END\r\n"),
            Reply::Ok => out.extend_from_slice(b"OK\r\n"),
            Reply::Value { key, flags, data } => {
                out.reserve(key.len() + data.len() + 32);
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(key);
                // Writing into a Vec cannot fail.
                let _ = write!(out, " {} {}\r\n", flags, data.len());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Version(text) => {
                let _ = write!(out, "VERSION {} {}\r\n", super::MEMCACHED_LEVEL, text);
            }
            Reply::Stat(name, value) => {
                let _ = write!(out, "STAT {} {}\r\n", name, value);
            }
            Reply::StatBlock { name, fields } => {
                let _ = write!(out, "queue '{}' {{\r\n", name);
                for (field, value) in *fields {
                    let _ = write!(out, "  {}={}\r\n", field, value);
                }
                out.extend_from_slice(b"}\r\n");
            }
            Reply::Meta { code, meta, item } => encode_meta(out, *code, meta, item.as_ref()),
            Reply::MetaNoop => out.extend_from_slice(b"MN\r\n"),
            Reply::Error(error) => {
                let _ = write!(out, "{}\r\n", error);
            }
            Reply::ServerError(reason) => {
                out.extend_from_slice(b"SERVER_ERROR ");
                // A reason is one line, whatever the storage layer put in it.
                out.extend(
                    reason
                        .bytes()
                        .map(|b| if b.is_ascii_control() { b' ' } else { b }),
                );
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// `<code> <flag>*\r\n`, and for `VA` the data block.
fn encode_meta(out: &mut Vec<u8>, code: MetaCode, meta: &Meta, item: Option<&MetaItem>) {
    let data = item.map_or(&[][..], |item| item.data);
    out.reserve(meta.key.len() + data.len() + 64);
    match code {
        MetaCode::Value => {
            let _ = write!(out, "VA {}", data.len());
        }
        MetaCode::Done => out.extend_from_slice(b"HD"),
        MetaCode::Miss => out.extend_from_slice(b"EN"),
        MetaCode::NotFound => out.extend_from_slice(b"NF"),
    }
    let hit = matches!(code, MetaCode::Value | MetaCode::Done);
    for flag in &meta.returns {
        match flag {
            Returned::Opaque(opaque) => {
                out.extend_from_slice(b" O");
                out.extend_from_slice(opaque);
            }
            Returned::Key => {
                out.extend_from_slice(b" k");
                out.extend_from_slice(&meta.key);
                if meta.base64 {
                    out.extend_from_slice(b" b");
                }
            }
            // `c` also answers an `ms`, which stored an item but returns none.
            Returned::Cas if hit => out.extend_from_slice(b" c0"),
            Returned::Cas => {}
            Returned::ClientFlags | Returned::Size | Returned::Ttl => {
                let _ = match (flag, item) {
                    (_, None) => Ok(()),
                    (Returned::ClientFlags, Some(item)) => write!(out, " f{}", item.flags),
                    (Returned::Size, Some(item)) => write!(out, " s{}", item.data.len()),
                    (_, Some(item)) => write!(out, " t{}", item.ttl),
                };
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    if code == MetaCode::Value {
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
}
