//! The decision feed: every routing decision goes to the bounded log (what
//! `recent_decisions` and `/api/decisions` read) and, while someone listens, to the
//! broadcast behind `subscribe_decisions` and the SSE stream, numbered in order.

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use tokio::sync::broadcast;

use super::classes::ClassId;
use super::decision_log::DecisionLog;
use super::lock;
use crate::types::RoutingDecision;

/// Capacity of the decision broadcast; a subscriber lagging further skips ahead.
pub(crate) const DECISION_CHANNEL_CAP: usize = 1_024;

#[derive(Debug)]
pub(crate) struct Feed {
    /// The last decisions, `decision_log_cap` of them.
    log: DecisionLog,
    /// Set when someone subscribes; refreshed from the receiver count by the ticker
    /// ([`Feed::refresh_listening`]), so the hot path never takes the broadcast's lock
    /// to ask.
    listening: AtomicBool,
    /// Bumped by every subscribe (lets the ticker detect a racing subscribe).
    subscriptions: AtomicU64,
    /// The next feed position (`RoutingDecision::seq`, from 1): taken by each broadcast
    /// decision while it is sent, so positions reach every receiver in order; raised
    /// past the routed total by each subscribe. Locked only while someone listens (the
    /// broadcast locks its own queue then too).
    next_seq: Mutex<u64>,
    sender: broadcast::Sender<RoutingDecision>,
}

impl Feed {
    /// A feed whose log holds `log_cap` decisions.
    pub(crate) fn new(log_cap: usize) -> Self {
        let (sender, _) = broadcast::channel(DECISION_CHANNEL_CAP);
        Self {
            log: DecisionLog::new(log_cap),
            listening: AtomicBool::new(false),
            subscriptions: AtomicU64::new(0),
            next_seq: Mutex::new(1),
            sender,
        }
    }

    /// How many decisions the log holds (fixed when the router is built).
    pub(crate) fn capacity(&self) -> usize {
        self.log.capacity()
    }

    /// Logs `d` (work of `class`) in a slot claimed through `cursor` and, while someone
    /// listens, broadcasts it with its class name (`name`) and feed position.
    #[inline]
    pub(crate) fn record(
        &self,
        cursor: &AtomicU64,
        mut d: RoutingDecision,
        class: Option<ClassId>,
        name: impl FnOnce(ClassId) -> Option<&'static str>,
    ) {
        self.log.push(cursor, &d, class);
        if self.listening.load(Relaxed) {
            d.class = class.and_then(name).map(Cow::Borrowed);
            let mut next = lock(&self.next_seq);
            d.seq = Some(*next);
            *next += 1;
            let _ = self.sender.send(d);
        }
    }

    /// A new receiver of the broadcast; positions continue after `routed_total`, so
    /// the decisions made while nobody listened are counted as missed.
    pub(crate) fn subscribe(&self, routed_total: u64) -> broadcast::Receiver<RoutingDecision> {
        let rx = self.sender.subscribe();
        self.subscriptions.fetch_add(1, Relaxed);
        {
            let mut next = lock(&self.next_seq);
            *next = (*next).max(routed_total + 1);
        }
        self.listening.store(true, Relaxed);
        rx
    }

    /// Stops broadcasting once nobody listens. Clears the flag only if nobody
    /// subscribed meanwhile; a lost race costs at most one tick of decisions for a
    /// brand-new subscriber.
    pub(crate) fn refresh_listening(&self) {
        let generation = self.subscriptions.load(Relaxed);
        if self.sender.receiver_count() == 0 && self.subscriptions.load(Relaxed) == generation {
            self.listening.store(false, Relaxed);
        }
    }

    /// The most recent decisions, newest first, at most `limit` (see
    /// [`DecisionLog::recent`]).
    pub(crate) fn recent(
        &self,
        limit: usize,
        class_name: impl Fn(ClassId) -> Option<&'static str>,
    ) -> Vec<RoutingDecision> {
        self.log.recent(limit, class_name)
    }
}
