//! The current time as the `Date` header needs it (RFC 9110 §6.6.1) and as the access log
//! needs it (common log format, RFC 3339), formatted once per second instead of once per
//! response.
//!
//! The loop calls [`DateCache::refresh`] once per tick; responses copy the cached bytes.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;
/// Length of a common-log-format timestamp: `06/Nov/1994:08:49:37 +0000`.
pub const CLF_LEN: usize = 26;
/// Length of an RFC 3339 timestamp in UTC to the second: `1994-11-06T08:49:37Z`.
pub const RFC3339_LEN: usize = 20;

/// The formatted current second.
#[derive(Clone, Debug)]
pub struct DateCache {
    second: u64,
    imf_fixdate: [u8; IMF_FIXDATE_LEN],
    clf: [u8; CLF_LEN],
    rfc3339: [u8; RFC3339_LEN],
}

impl DateCache {
    pub fn new() -> Self {
        let mut cache = DateCache {
            second: u64::MAX,
            imf_fixdate: [b' '; IMF_FIXDATE_LEN],
            clf: [b' '; CLF_LEN],
            rfc3339: [b' '; RFC3339_LEN],
        };
        cache.refresh(SystemTime::now());
        cache
    }

    /// Re-formats the dates if `now` is in a different second than the cached one.
    pub fn refresh(&mut self, now: SystemTime) {
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if second == self.second {
            return;
        }
        self.second = second;
        let formatted = httpdate::fmt_http_date(now);
        if formatted.len() == IMF_FIXDATE_LEN {
            self.imf_fixdate.copy_from_slice(formatted.as_bytes());
            self.clf = clf_from_imf_fixdate(&self.imf_fixdate);
        }
        let utc = i64::try_from(second)
            .ok()
            .and_then(|second| time::OffsetDateTime::from_unix_timestamp(second).ok());
        if let Some(utc) = utc {
            let mut rfc3339 = [b' '; RFC3339_LEN];
            let formatted = utc.format_into(&mut &mut rfc3339[..], &Rfc3339);
            if matches!(formatted, Ok(RFC3339_LEN)) {
                self.rfc3339 = rfc3339;
            }
        }
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`
    pub fn imf_fixdate(&self) -> &[u8; IMF_FIXDATE_LEN] {
        &self.imf_fixdate
    }

    /// `06/Nov/1994:08:49:37 +0000`
    pub fn clf(&self) -> &[u8; CLF_LEN] {
        &self.clf
    }

    /// `1994-11-06T08:49:37Z`
    pub fn rfc3339(&self) -> &str {
        // Formatted from ASCII digits and separators (or still the initial spaces).
        std::str::from_utf8(&self.rfc3339).unwrap_or_default()
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Rearranges the fixed-width fields of an IMF-fixdate (formatted by httpdate) into the common
/// log format's timestamp; no calendar arithmetic happens here.
fn clf_from_imf_fixdate(imf: &[u8; IMF_FIXDATE_LEN]) -> [u8; CLF_LEN] {
    // imf: "Sun, 06 Nov 1994 08:49:37 GMT"
    //       0123456789012345678901234567
    let mut clf = [0u8; CLF_LEN];
    clf[0..2].copy_from_slice(&imf[5..7]); // day
    clf[2] = b'/';
    clf[3..6].copy_from_slice(&imf[8..11]); // month
    clf[6] = b'/';
    clf[7..11].copy_from_slice(&imf[12..16]); // year
    clf[11] = b':';
    clf[12..20].copy_from_slice(&imf[17..25]); // time
    clf[20..].copy_from_slice(b" +0000");
    clf
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_both_dates_for_a_known_instant() {
        let mut cache = DateCache::new();
        cache.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
        assert_eq!(cache.imf_fixdate(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(cache.clf(), b"06/Nov/1994:08:49:37 +0000");
        assert_eq!(cache.rfc3339(), "1994-11-06T08:49:37Z");
    }

    #[test]
    fn refresh_within_the_same_second_keeps_the_bytes() {
        let mut cache = DateCache::new();
        let base = UNIX_EPOCH + Duration::from_secs(784_111_777);
        cache.refresh(base);
        cache.refresh(base + Duration::from_millis(999));
        assert_eq!(cache.imf_fixdate(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(cache.rfc3339(), "1994-11-06T08:49:37Z");
        cache.refresh(base + Duration::from_secs(1));
        assert_eq!(cache.imf_fixdate(), b"Sun, 06 Nov 1994 08:49:38 GMT");
        assert_eq!(cache.rfc3339(), "1994-11-06T08:49:38Z");
    }
}
