//! Small synchronisation helpers shared by the router and the remote transport.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, recovering the data if a holder panicked: every critical section in this
/// crate leaves its state consistent, so a poisoned lock carries no broken invariant.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
