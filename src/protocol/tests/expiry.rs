//! Expiry: `set` exptimes follow the memcached rule.

use super::*;

fn expiring(exptime: i64) -> Set {
    Set {
        queues: vec!["q".into()],
        flags: 0,
        exptime,
        data: vec![],
        noreply: false,
    }
}

#[test]
fn expiry_follows_memcached_rule() {
    let now = 1_700_000_000_000u64;
    assert_eq!(expiring(0).expires_at_ms(now), None);
    for exptime in [-1, -2_592_001, i64::MIN] {
        let at = expiring(exptime).expires_at_ms(now);
        assert!(matches!(at, Some(at) if at <= now), "{exptime}: {at:?}");
    }
    let cases: &[(i64, u64)] = &[
        (1, now + 1_000),
        (60, now + 60_000),
        (2_592_000, now + 2_592_000_000),
        (2_592_001, 2_592_001_000),
        (1_800_000_000, 1_800_000_000_000),
    ];
    for &(exptime, at) in cases {
        assert_eq!(expiring(exptime).expires_at_ms(now), Some(at), "{exptime}");
    }
    // extremes saturate instead of overflowing
    assert!(matches!(expiring(i64::MAX).expires_at_ms(now), Some(at) if at > now));
    assert_eq!(expiring(1).expires_at_ms(u64::MAX), Some(u64::MAX));
}
