//! The memcache text protocol as tern speaks it: bytes → [`Command`], replies → bytes.
//!
//! Pure code: no I/O, no async, no storage. [`parse`] looks at the start of a connection's
//! input buffer and says either "need more bytes", "here is a command and how many bytes it
//! used", or "reject this, with this reply, after consuming/discarding this much". Every limit
//! (line length, item size) is checked on the header, before a data block is buffered, so a
//! connection's memory stays bounded whatever arrives. The exact grammar and replies are in
//! SPEC.md; this module is its executable form.

mod command;
mod meta;
mod parse;
mod parse_meta;
mod reply;

pub use command::{Command, Get, GetOptions, Key, Replay, Set, Target};
pub use meta::{seconds_left, Meta, MetaCode, MetaDelete, MetaGet, MetaItem, MetaSet, Returned};
pub use parse::{needs, parse, Rejection, MAX_LINE, MAX_NAME};
pub use reply::Reply;

/// The memcached protocol level tern speaks (text and meta commands of memcached 1.6), the
/// first token of the `version` reply: libmemcached-based clients refuse a version whose first
/// number is not 1–255, and node clients parse it as `x.y.z`.
pub const MEMCACHED_LEVEL: &str = "1.6.0";

/// A request the protocol rejects; `Display` is the reply line without its `\r\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Unknown command name, or an empty line.
    #[error("ERROR")]
    UnknownCommand,
    /// Missing or extra tokens, numbers that do not parse or are out of range.
    #[error("CLIENT_ERROR bad command line format")]
    BadFormat,
    /// A queue or cursor name outside `[A-Za-z0-9_:-]{1,200}`, or a cursor where none may be.
    #[error("CLIENT_ERROR bad queue name")]
    BadQueueName,
    /// An unknown, repeated or forbidden combination of `get` options.
    #[error("CLIENT_ERROR bad get options")]
    BadGetOptions,
    /// A data block not followed by `\r\n`.
    #[error("CLIENT_ERROR bad data chunk")]
    BadDataChunk,
    /// A command line over [`MAX_LINE`] bytes: the stream cannot be resynchronised.
    #[error("CLIENT_ERROR line too long")]
    LineTooLong,
    /// A read where this connection already holds one open on the same queue or cursor.
    #[error("CLIENT_ERROR close current item first")]
    CloseCurrentItemFirst,
    /// A data block over the server's maximum item size.
    #[error("SERVER_ERROR object too large for cache")]
    TooLarge,
    /// A meta command flag that command does not know.
    #[error("CLIENT_ERROR invalid flag")]
    InvalidFlag,
    /// An `ms` mode other than set (add, append, prepend, replace): a queue only appends.
    #[error("CLIENT_ERROR mode not supported for a queue")]
    ModeNotSupported,
}

impl Error {
    /// The reply's first word: `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR`.
    pub fn reply_kind(self) -> &'static str {
        match self {
            Error::UnknownCommand => "ERROR",
            Error::TooLarge => "SERVER_ERROR",
            _ => "CLIENT_ERROR",
        }
    }

    /// Whether the connection must be closed after replying.
    pub fn closes_connection(self) -> bool {
        self == Error::LineTooLong
    }
}

#[cfg(test)]
mod tests;
