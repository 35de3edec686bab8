//! TAP internal port (placeholder: filled in by the uplink-ports work).
