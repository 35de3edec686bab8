//! Time as a value: the crate never reads a clock.

use std::fmt;
use std::ops::Add;
use std::time::Duration;

/// A point in time, in milliseconds since an origin the caller chooses
/// (`vswitchd` uses its own start). Every state change takes one, so tests
/// drive time by hand and `explain` can say "since t=12s".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    millis: u64,
}

impl Timestamp {
    /// The origin.
    pub const ZERO: Timestamp = Timestamp { millis: 0 };

    /// `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp { millis }
    }

    /// `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Timestamp {
        Timestamp {
            millis: secs.saturating_mul(1000),
        }
    }

    /// `d` after the origin (for example `start.elapsed()`), to the millisecond.
    pub fn from_duration(d: Duration) -> Timestamp {
        Timestamp {
            millis: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.millis.saturating_sub(earlier.millis))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, d: Duration) -> Timestamp {
        let add = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Timestamp {
            millis: self.millis.saturating_add(add),
        }
    }
}

impl fmt::Display for Timestamp {
    /// `t=12s`, or `t=12.345s` when not a whole second.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, ms) = (self.millis / 1000, self.millis % 1000);
        if ms == 0 {
            write!(f, "t={s}s")
        } else {
            write!(f, "t={s}.{ms:03}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_arithmetic() {
        assert_eq!(Timestamp::from_secs(12).to_string(), "t=12s");
        assert_eq!(Timestamp::from_millis(12_345).to_string(), "t=12.345s");
        assert_eq!(Timestamp::from_millis(50).to_string(), "t=0.050s");
        let t = Timestamp::from_secs(1) + Duration::from_millis(500);
        assert_eq!(t.as_millis(), 1500);
        assert_eq!(
            t.saturating_since(Timestamp::from_secs(2)),
            Duration::ZERO,
            "earlier in the future saturates"
        );
        assert_eq!(
            Timestamp::from_duration(Duration::from_micros(2_999)).as_millis(),
            2
        );
    }
}
