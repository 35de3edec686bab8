//! A team of uplinks seen by the switch as one port (placeholder).
