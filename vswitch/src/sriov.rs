//! SR-IOV in the daemon (placeholder: filled in by the SR-IOV work).
