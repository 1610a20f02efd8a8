//! A hint that brings memory into the cache ahead of a read.
//!
//! Walks over many events in an order other than the one their memory was written in (a
//! segment's rows sorted by caller, each event's texts a separate allocation) wait on a
//! cache miss per event and per text. Asking for the lines a few events ahead lets those
//! misses overlap.

/// Asks the CPU to bring the cache line holding `address` into its caches. Only a hint:
/// it never faults, whatever the address, and does nothing where there is no such
/// instruction.
#[allow(unsafe_code)]
pub fn prefetch<T: ?Sized>(address: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE, which the instruction needs, is part of every x86-64 CPU; a prefetch
    // reads nothing into the program and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
