//! The virtio-net header that precedes every frame in a guest buffer, and
//! the layout a port negotiated for it.
//!
//! Layout (`struct virtio_net_hdr`, virtio 1.2 section 5.1.6 "Device
//! Operation"; the 10-byte form without `num_buffers` is section 5.1.6.1
//! "Legacy Interface: Device Operation"), every multi-byte field
//! little-endian:
//!
//! | bytes    | field         |
//! |----------|---------------|
//! | `0`      | `flags`       |
//! | `1`      | `gso_type`    |
//! | `2..4`   | `hdr_len`     |
//! | `4..6`   | `gso_size`    |
//! | `6..8`   | `csum_start`  |
//! | `8..10`  | `csum_offset` |
//! | `10..12` | `num_buffers` |
//!
//! The switch negotiates no offloads: it reads none of these fields from a
//! guest and writes only `num_buffers` (the other bytes stay zero).

use std::ops::Range;

/// `flags` (`VIRTIO_NET_HDR_F_*`): one byte.
pub const FLAGS: usize = 0;
/// `gso_type` (`VIRTIO_NET_HDR_GSO_*`): one byte.
pub const GSO_TYPE: usize = 1;
/// `hdr_len`: le16, the length of the frame's headers (GSO).
pub const HDR_LEN: Range<usize> = 2..4;
/// `gso_size`: le16, the segment size (GSO).
pub const GSO_SIZE: Range<usize> = 4..6;
/// `csum_start`: le16, where checksumming starts (checksum offload).
pub const CSUM_START: Range<usize> = 6..8;
/// `csum_offset`: le16, where the checksum goes from `csum_start`.
pub const CSUM_OFFSET: Range<usize> = 8..10;
/// `num_buffers`: le16, how many chains a received frame spans (present
/// with `VIRTIO_F_VERSION_1` or `VIRTIO_NET_F_MRG_RXBUF`).
pub const NUM_BUFFERS: Range<usize> = 10..12;

/// The header's length without `num_buffers`: a legacy device without
/// `VIRTIO_NET_F_MRG_RXBUF`.
pub const LEN_LEGACY: usize = 10;
/// The header's length with `num_buffers`: `VIRTIO_F_VERSION_1` or
/// `VIRTIO_NET_F_MRG_RXBUF`.
pub const LEN: usize = 12;

/// virtio-net header layout negotiated for a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetHdr {
    /// Header length: [`LEN`] (12) with VERSION_1 or MRG_RXBUF, else
    /// [`LEN_LEGACY`] (10).
    pub len: usize,
    /// Mergeable receive buffers (a frame may span several chains).
    pub mrg_rxbuf: bool,
}
