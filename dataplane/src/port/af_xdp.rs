//! AF_XDP uplink port (placeholder: filled in by the uplink-ports work).
