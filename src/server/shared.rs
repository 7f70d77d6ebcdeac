//! What the accept loop and every connection share: the store, the settings, the counters
//! and the stop signal. Plain data; the modules that use it own the behaviour.

use super::config::Config;
use super::shutdown::Shutdown;
use super::stats::Counters;
use crate::queue::Store;
use std::sync::Arc;

pub(crate) struct Shared {
    pub(super) store: Store,
    pub(super) config: Config,
    /// An `Arc` of its own so a connection can count its bytes without the rest.
    pub(super) counters: Arc<Counters>,
    pub(super) shutdown: Arc<Shutdown>,
}
