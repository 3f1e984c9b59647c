//! Lock acquisition for the bus's short, synchronous critical sections.
//!
//! Every lock in the memory bus is a `std::sync` lock held for a few
//! pointer moves and never across an `.await` (the guards are `!Send`, so the
//! compiler enforces that inside our `Send` futures). A poisoned lock means a
//! thread panicked while holding it; no critical section here leaves state
//! half-updated in a way that matters more than stopping the whole runtime
//! would, so we recover the guard instead of propagating the panic.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
