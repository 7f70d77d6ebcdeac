//! Payloads: 8 hex digits of connection, 16 of sequence, filler, 16 hex digits of a checksum of
//! the rest; their encoding, decoding and the packed (conn, seq) ids the verification compares.

pub const MIN_ITEM: usize = 40;
pub const FILLER: &[u8] = b"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";

/// One id for item (conn, seq): conn in the bits above 40.
pub fn pack(conn: u32, seq: u64) -> u64 {
    ((conn as u64) << 40) | seq
}

pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ data.len() as u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(31);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

pub fn put_hex(out: &mut Vec<u8>, v: u64, digits: usize) {
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((v >> (i * 4)) & 0xf) as usize]);
    }
}

pub fn get_hex(s: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &b in s {
        let d = (b as char).to_digit(16)? as u64;
        v = (v << 4) | d;
    }
    Some(v)
}

/// Appends the payload of item (conn, seq) to `out`.
pub fn make_payload(out: &mut Vec<u8>, conn: u32, seq: u64, size: usize) {
    let start = out.len();
    put_hex(out, conn as u64, 8);
    put_hex(out, seq, 16);
    let mut fill = size - MIN_ITEM;
    let mut off = ((seq.wrapping_mul(7) + conn as u64) % 26) as usize;
    while fill > 0 {
        let n = fill.min(26);
        out.extend_from_slice(&FILLER[off..off + n]);
        fill -= n;
        off = (off + 1) % 26;
    }
    let sum = checksum(&out[start..]);
    put_hex(out, sum, 16);
}

/// (conn, seq) of a payload, or None if it is not one of ours of the right size (corrupt).
pub fn decode(data: &[u8], size: usize) -> Option<(u32, u64)> {
    if data.len() != size || size < MIN_ITEM {
        return None;
    }
    let (body, sum) = data.split_at(size - 16);
    if get_hex(sum)? != checksum(body) {
        return None;
    }
    Some((get_hex(&body[..8])? as u32, get_hex(&body[8..24])?))
}

/// The (conn, seq) of a packed id.
pub fn unpack(id: u64) -> (u32, u64) {
    ((id >> 40) as u32, id & ((1 << 40) - 1))
}
