//! memcached 1.6's meta commands as tern runs them: `ms`, `mg` and `md` are `set`, `get` and
//! `delete` on the same keys, with single-letter flags that shape the reply. This file holds
//! their parsed forms and decides which reply each outcome gets (quiet mode, returned flags,
//! and the rule that an `mg` without `v` never takes an item); `parse_meta` reads them.

use super::command::{GetOptions, Key, Set, Target};
use super::reply::Reply;

/// What a meta command asked of its reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// `q`: no reply when the outcome is the expected one (see each command's `reply`).
    pub quiet: bool,
    /// The flags to return, in the order the request gave them.
    pub returns: Vec<Returned>,
    /// The key exactly as sent (still base64 with `b`), returned by `k`.
    pub key: Vec<u8>,
    /// `b`: the key was sent base64; `k` returns it so, followed by `b`.
    pub base64: bool,
}

/// A flag the reply carries back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    /// `O<opaque>`: on every reply code.
    Opaque(Vec<u8>),
    /// `k<key>` (then `b` if the key is base64): on every reply code.
    Key,
    /// `f<flags>`, only with an item.
    ClientFlags,
    /// `s<size>`, only with an item.
    Size,
    /// `t<seconds left>` (`-1`: never expires), only with an item.
    Ttl,
    /// `c0` on a hit or a store: tern keeps no CAS values.
    Cas,
}

/// A meta reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCode {
    /// `VA <size>`: a hit, with its value.
    Value,
    /// `HD`: a hit without value, or done (stored, deleted).
    Done,
    /// `EN`: nothing to read.
    Miss,
    /// `NF`: nothing to delete.
    NotFound,
}

/// The item a hit carries, for the value flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaItem<'a> {
    pub flags: u32,
    pub data: &'a [u8],
    /// Seconds left before it expires, `-1` for never (see [`seconds_left`]).
    pub ttl: i64,
}

/// `ms`: a `set` (fanout included) with meta flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSet {
    /// `noreply` is always false: `q` hides only `HD`, errors are always sent.
    pub set: Set,
    pub meta: Meta,
}

/// `mg`: a `get` of one key with meta flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaGet {
    /// The key, base64-decoded if need be; options as the client gave them.
    pub key: Key,
    /// `v`: return the value.
    pub value: bool,
    pub meta: Meta,
}

/// `md`: a `delete` of a queue or cursor with meta flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaDelete {
    pub target: Target,
    pub meta: Meta,
}

impl Meta {
    fn reply<'a>(&'a self, code: MetaCode, item: Option<MetaItem<'a>>) -> Reply<'a> {
        Reply::Meta {
            code,
            meta: self,
            item,
        }
    }
}

impl MetaSet {
    /// The reply once the item is stored: `HD`, none if quiet.
    pub fn stored(&self) -> Option<Reply<'_>> {
        (!self.meta.quiet).then(|| self.meta.reply(MetaCode::Done, None))
    }
}

impl MetaGet {
    /// The options the read runs with. Without `v`, a key that would take or open an item
    /// peeks instead: nothing leaves the queue that the reply does not carry. `/close`,
    /// `/abort`, `/t=`, `/rewind` and `/seek=` act as given.
    pub fn read_options(&self) -> GetOptions {
        let mut options = self.key.options;
        let takes = !options.abort
            && !options.peek
            && options.replay.is_none()
            && (options.open || !options.close);
        if takes && !self.value {
            options.open = false;
            options.peek = true;
        }
        options
    }

    /// The reply to what the read found: `VA` (with `v`) or `HD` for an item; `EN` for
    /// nothing, none if quiet.
    pub fn reply<'a>(&'a self, item: Option<MetaItem<'a>>) -> Option<Reply<'a>> {
        match item {
            Some(_) if self.value => Some(self.meta.reply(MetaCode::Value, item)),
            Some(_) => Some(self.meta.reply(MetaCode::Done, item)),
            None => (!self.meta.quiet).then(|| self.meta.reply(MetaCode::Miss, None)),
        }
    }
}

impl MetaDelete {
    /// `HD` (none if quiet) if the queue or cursor existed, else `NF`.
    pub fn reply(&self, existed: bool) -> Option<Reply<'_>> {
        match existed {
            true => (!self.meta.quiet).then(|| self.meta.reply(MetaCode::Done, None)),
            false => Some(self.meta.reply(MetaCode::NotFound, None)),
        }
    }
}

/// memcached's `t`: whole seconds until `expires_ms` (rounded up, so an item that has not
/// expired never shows 0 left), `-1` for an item that never expires.
pub fn seconds_left(expires_ms: Option<u64>, now_ms: u64) -> i64 {
    match expires_ms {
        None => -1,
        Some(at) => i64::try_from(at.saturating_sub(now_ms).div_ceil(1000)).unwrap_or(i64::MAX),
    }
}
