//! AF_PACKET uplink port (placeholder: filled in by the uplink-ports work).
